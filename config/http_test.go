package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/schemas"
)

func TestDynamoDBCapsTheBodySize(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, "store: {kind: dynamodb, dynamodb: {table: jobs}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.MaxBodyBytes != DefaultDynamoDBMaxBodyBytes {
		t.Fatalf("max_body_bytes = %d with dynamodb, want %d", c.HTTP.MaxBodyBytes, DefaultDynamoDBMaxBodyBytes)
	}
	_, err = Load(writeConfig(t, "store: {kind: dynamodb, dynamodb: {table: jobs}}\nhttp: {max_body_bytes: 1048576}\n"), nil)
	got := problemsOf(t, err)
	if len(got) != 1 || got[0].Field != "http.max_body_bytes" || !strings.Contains(got[0].Message, "400 KB") {
		t.Fatalf("problems %v, want one about http.max_body_bytes", got)
	}
}

func TestHTTPBounds(t *testing.T) {
	t.Parallel()
	t.Run("the timeouts left out follow read_timeout", func(t *testing.T) {
		t.Parallel()
		c, err := Load(writeConfig(t, "http: {read_timeout: 5s}\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if h := c.HTTP; h.ReadHeaderTimeout != 5*time.Second || h.WriteTimeout != time.Minute {
			t.Fatalf("read_header_timeout %s, write_timeout %s; want 5s (read_timeout) and 1m", h.ReadHeaderTimeout, h.WriteTimeout)
		}
	})
	t.Run("bounds that contradict each other", func(t *testing.T) {
		t.Parallel()
		_, err := Load(writeConfig(t, `
http: {max_body_bytes: 2097152, max_inflight_body_bytes: 1048576, read_timeout: 30s, write_timeout: 10s, read_header_timeout: 1m}
`), nil)
		got := problemsOf(t, err)
		want := []schemas.FieldError{
			{Field: "http.max_inflight_body_bytes", Message: "is 1048576, less than http.max_body_bytes (2097152), so the largest body could never be read; raise it to at least 2097152"},
			{Field: "http.write_timeout", Message: "is 10s, shorter than http.read_timeout (30s): a body that arrives in time could not be answered; make it at least 30s"},
			{Field: "http.read_header_timeout", Message: "is 1m0s, longer than http.read_timeout (30s), which bounds the head too; lower it or raise read_timeout"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("problems:\n got  %v\n want %v", got, want)
		}
	})
}
