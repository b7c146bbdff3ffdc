package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/internal/awstest"
	"github.com/infleet/infleet/messages"
)

// TestRoutingReloadsFromAnS3Object follows routing.reload_from on the S3 emulator: the object
// applies at start, a valid change applies, an invalid one is rejected and the last good
// routing stays.
func TestRoutingReloadsFromAnS3Object(t *testing.T) {
	endpoint := awstest.Endpoint(t)
	t.Parallel()
	ctx := context.Background()
	client := awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	bucket := fmt.Sprintf("reload-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	put := func(body string) {
		t.Helper()
		if _, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("routing.yaml"),
			Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	put(reloadBase + "routes: {default: fast, summarize: big}\n")

	cfg, err := config.LoadBytes([]byte(`
models:
  - {name: fast, provider: sim}
  - {name: big, provider: sim}
routes: {default: fast}
results: {s3: {endpoint: `+fmt.Sprintf("%q", endpoint)+`}}
routing: {reload_interval: 10ms, reload_from: "s3://`+bucket+`/routing.yaml"}
`), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.SQLite.Path = filepath.Join(t.TempDir(), "infleet.db") // where the model figures go
	a := &app{cfg: cfg, aws: newAWSClients(cfg), reg: prometheus.NewRegistry(), log: zerolog.Nop()}
	t.Cleanup(func() { _ = a.close() })
	p, err := a.pickerFrom("", nil)
	if err != nil {
		t.Fatal(err)
	}
	picked := func() string {
		m, err := p.Pick(&messages.Job{JobID: "j", Task: "summarize", Input: messages.Input{Text: "hi"}})
		if err != nil {
			t.Fatal(err)
		}
		return m.Name
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := picked(); got != "big" {
		t.Fatalf("picked %s at start, want big (the S3 object's routing, not the file's)", got)
	}
	put(reloadBase + "routes: {default: fast, summarize: fast}\n")
	wait("the valid change to apply", func() bool { return picked() == "fast" })
	put(reloadBase + "routes: {default: fast, summarize: ghost}\n")
	wait("the invalid change to be rejected", func() bool { return reloadCount(t, a.reg, "rejected") == 1 })
	if got := picked(); got != "fast" {
		t.Fatalf("picked %s after a rejected change, want fast (the last good routing)", got)
	}

	missing := cfg
	missing.Routing.ReloadFrom = "s3://" + bucket + "/missing.yaml"
	if _, err := (&app{cfg: missing, aws: newAWSClients(missing), reg: prometheus.NewRegistry(), log: zerolog.Nop()}).pickerFrom("", nil); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("a missing object: %v, want an error naming it", err)
	}
}

// reloadCount reads infleet_config_reloads_total{result} from reg.
func reloadCount(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "infleet_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
