package worker_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/worker"
)

// TestParseJobMatchesUnmarshal: the job ParseJob builds from the document it validated is the
// one json.Unmarshal makes of the body (metadata up to JSON formatting), and a body with
// anything but white space after its JSON value is refused, as json.Unmarshal refuses it.
func TestParseJobMatchesUnmarshal(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"task":"summarize","input":{"text":"hello"}}`,
		` {"job_id":"a1","task":"classify","input":{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"h\u00e9\n\"x\""}]},"priority":"high"} ` + "\n",
		`{"task":"t","input":{"s3_uri":"s3://my-bucket/k.txt"},"params":{"max_tokens":10,"temperature":0.5,"top_p":1,"stop":["\n\n","END"]}}`,
		`{"task":"t","input":{"text":"x"},"model":"fast","callback_url":"https://example.com/hook?a=1","metadata":{"b":[1,2.5,"x"],"a":{"n":null}},"idempotency_key":"k-1","replay_name":"r","context":"ref","stream":true}`,
	} {
		if _, err := worker.ParseJob([]byte(body)); err != nil {
			t.Fatalf("ParseJob(%s): %v", body, err)
		}
		checkParseJob(t, []byte(body))
	}
	for _, body := range []string{
		`{"task":"t","input":{"text":"x"}} {}`,
		`{"task":"t","input":{"text":"x"}}x`,
		`{"task":"t","input":{"text":"x"}}]`,
	} {
		if _, err := worker.ParseJob([]byte(body)); err == nil || !strings.Contains(err.Error(), "one JSON value") {
			t.Errorf("ParseJob(%s) = %v; want refused for the data after the job", body, err)
		}
	}
}

// checkParseJob fails t when ParseJob accepts body as a job different from json.Unmarshal's.
func checkParseJob(t *testing.T, body []byte) {
	t.Helper()
	got, err := worker.ParseJob(body)
	if err != nil {
		return
	}
	var want messages.Job
	if err := json.Unmarshal(body, &want); err != nil {
		// The schema admits what encoding/json refuses (max_tokens written 1.2E1): intake
		// accepts such jobs too.
		return
	}
	if len(got.Metadata) > 0 || len(want.Metadata) > 0 {
		var g, w any
		if json.Unmarshal(got.Metadata, &g) != nil || json.Unmarshal(want.Metadata, &w) != nil || !reflect.DeepEqual(g, w) {
			if !bytes.Equal(got.Metadata, want.Metadata) {
				t.Fatalf("metadata of %s: %s, want %s", body, got.Metadata, want.Metadata)
			}
		}
		got.Metadata, want.Metadata = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseJob(%s) = %+v, json.Unmarshal = %+v", body, got, want)
	}
}
