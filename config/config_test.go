package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/infleet/infleet/schemas"
)

// writeConfig writes body to a config file in a fresh temp dir and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "infleet.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problemsOf returns the problems of a *ValidationError, failing the test for any other error.
func problemsOf(t *testing.T, err error) []schemas.FieldError {
	t.Helper()
	verr, ok := errors.AsType[*ValidationError](err)
	if !ok {
		t.Fatalf("error = %v (%T), want *ValidationError", err, err)
	}
	return verr.Problems
}

func TestLoadWithNoFileGivesTheEmbeddedDefault(t *testing.T) {
	t.Parallel()
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr:       ":8080",
		DataDir:    "./data",
		Durability: "process",
		Transport: Transport{
			Kind:     "embedded",
			Embedded: Embedded{StreamPrefix: "INFLEET"},
			SQS: SQS{
				Queues:            PriorityNames{"infleet-high", "infleet-normal", "infleet-low"},
				DeadLetterQueue:   "infleet-dead",
				VisibilityTimeout: time.Minute,
				MaxReceiveCount:   10,
			},
			Kafka: Kafka{
				Topics:            PriorityNames{"infleet.high", "infleet.normal", "infleet.low"},
				DeadLetterTopic:   "infleet.dead",
				Group:             "infleet-workers",
				Partitions:        3,
				ReplicationFactor: 1,
				Compression:       "snappy",
				Linger:            5 * time.Millisecond,
				SessionTimeout:    30 * time.Second,
			},
		},
		Store: Store{
			Kind: "sqlite", Retention: new(720 * time.Hour), RetentionInterval: time.Minute,
			SQLite: SQLite{Path: filepath.Join("data", "infleet.db")}, DynamoDB: DynamoDB{Retention: 720 * time.Hour},
		},
		Results: Results{Kind: "file", S3: S3{PresignTTL: 15 * time.Minute, MaxInputBytes: 1 << 20}},
		Notify: Notify{
			Webhook:     Webhook{MaxAttempts: 5},
			EventBridge: EventBridge{Source: "infleet"},
			Outbox:      Outbox{Lease: 30 * time.Second, Poll: 500 * time.Millisecond},
		},
		Workers: Workers{
			Concurrency:     64,
			Prefetch:        64,
			MaxAttempts:     5,
			PriorityWeights: PriorityWeights{High: 6, Normal: 3, Low: 1},
			RetryBackoff:    RetryBackoff{Initial: time.Second, Max: time.Minute},
			ShutdownTimeout: 30 * time.Second,
			JobTimeout:      10 * time.Minute,
			CancelPoll:      250 * time.Millisecond,
			ClaimAfter:      250 * time.Millisecond,
		},
		Models: []Model{{Name: "fast", Provider: "sim", Latency: 20 * time.Millisecond}},
		Routes: map[string]string{"default": "fast"},
		HTTP: HTTP{MaxBodyBytes: 1 << 20, MaxWait: time.Minute, MaxInflightBodyBytes: 64 << 20, MaxHeaderBytes: 64 << 10,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 75 * time.Second},
		Archive: Archive{Retention: 168 * time.Hour, Write: ArchiveWriteBeforeAck, BatchWindow: 2 * time.Millisecond, BatchMax: 500, ReplayLease: 15 * time.Second},
		Log:     Log{Level: "info", Format: "auto"},
		Runtime: Runtime{HeapFloorBytes: new(int64(64 << 20))},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(\"\", nil) =\n%+v\nwant\n%+v", c, want)
	}
	if d := Default(); !reflect.DeepEqual(d, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", d, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of the default = %v", err)
	}
}

const fullConfig = `
addr: "127.0.0.1:9090"
data_dir: /var/lib/infleet
durability: fsync
transport:
  kind: sqs
  sqs:
    queues: {high: q-high, normal: q-normal, low: q-low}
    dead_letter_queue: q-dead
    visibility_timeout: 2m
    endpoint: http://127.0.0.1:4566
  kafka:
    brokers: ["k1:9092", "k2:9092"]
store:
  kind: dynamodb
  dynamodb: {table: jobs}
results:
  kind: s3
  s3: {bucket: out, prefix: "r/"}
notify:
  webhook: {url: "https://hooks.example.com/infleet", secret: s3cret, allow_private: true, max_attempts: 3}
  sns: {topic_arn: "arn:aws:sns:us-east-1:123456789012:infleet"}
  eventbridge: {bus: default}
workers:
  concurrency: 8
  max_attempts: 3
  priority_weights: {high: 10, strict: true}
  retry_backoff: {initial: 250ms, max: 5s}
  shutdown_timeout: 1m30s
  job_timeout: 1h
models:
  - {name: fast, provider: sim, latency: 5ms}
  - name: main
    provider: openai
    base_url: "http://127.0.0.1:9000/v1"
    model_id: gpt-4o-mini
    api_key_env: OPENAI_API_KEY
    max_concurrency: 4
    fallbacks: [fast]
  - {name: claude, provider: bedrock, model_id: anthropic.claude, region: eu-west-1, endpoint: "http://127.0.0.1:4000"}
routes: {default: fast, summarize: main}
guardrails:
  input:
    pii: {entities: [EMAIL]}
    words: [badword]
triggers:
  s3: [{bucket: inbox, prefix: docs/, task: summarize}]
auth:
  api_keys: [{key: k_live_123, tenant: acme, rate: 2.5, tasks: ["*"], models: [main]}]
http: {max_body_bytes: 2048, max_wait: 10s, max_inflight_body_bytes: 8388608, max_header_bytes: 16384, read_timeout: 2m, idle_timeout: 30s}
log: {level: debug, format: json}
`

func TestLoadFullConfig(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, fullConfig), []string{"INFLEET_AWS_ENDPOINT=http://aws.local:4566"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", c.Addr, "127.0.0.1:9090"},
		{"sqlite path follows data_dir", c.Store.SQLite.Path, "/var/lib/infleet/infleet.db"},
		{"durability", c.Durability, DurabilityFsync},
		{"fsync", c.Fsync(), true},
		{"sqs queues", c.Transport.SQS.Queues, PriorityNames{"q-high", "q-normal", "q-low"}},
		{"visibility", c.Transport.SQS.VisibilityTimeout, 2 * time.Minute},
		{"brokers", c.Transport.Kafka.Brokers, []string{"k1:9092", "k2:9092"}},
		{"table", c.Store.DynamoDB.Table, "jobs"},
		{"bucket", c.Results.S3, S3{Bucket: "out", Prefix: "r/", PresignTTL: 15 * time.Minute, MaxInputBytes: 1 << 20}},
		{"webhook", c.Notify.Webhook, Webhook{URL: "https://hooks.example.com/infleet", Secret: "s3cret", AllowPrivate: true, MaxAttempts: 3}},
		{"eventbridge source default", c.Notify.EventBridge, EventBridge{Bus: "default", Source: "infleet"}},
		{"weights", c.Workers.PriorityWeights, PriorityWeights{High: 10, Normal: 3, Low: 1, Strict: true}},
		{"strict both ways", c.Workers.Strict, true},
		{"backoff", c.Workers.RetryBackoff, RetryBackoff{250 * time.Millisecond, 5 * time.Second}},
		{"shutdown", c.Workers.ShutdownTimeout, 90 * time.Second},
		{"job timeout", c.Workers.JobTimeout, time.Hour},
		{"models", c.Models, []Model{
			{Name: "fast", Provider: "sim", Latency: 5 * time.Millisecond},
			{Name: "main", Provider: "openai", BaseURL: "http://127.0.0.1:9000/v1", ModelID: "gpt-4o-mini", APIKeyEnv: "OPENAI_API_KEY", MaxConcurrency: 4, Fallbacks: []string{"fast"}, Timeout: time.Minute},
			{Name: "claude", Provider: "bedrock", ModelID: "anthropic.claude", Region: "eu-west-1", Endpoint: "http://127.0.0.1:4000", Timeout: time.Minute},
		}},
		{"routes", c.Routes, map[string]string{"default": "fast", "summarize": "main"}},
		{"guardrails", c.Guardrails.Input, GuardrailPolicies{PII: &PIIPolicy{Entities: []string{"EMAIL"}, Action: "ANONYMIZE", PhoneRegions: DefaultPhoneRegions}, Words: []string{"badword"}}},
		{"guardrails on", c.Guardrails.Enabled(), true},
		{"triggers", c.Triggers.S3, []S3Trigger{{Bucket: "inbox", Prefix: "docs/", Task: "summarize", Priority: "normal"}}},
		{"api key", c.Auth.APIKeys, []APIKey{{Key: "k_live_123", Tenant: "acme", Role: RoleClient, QuotaPeriod: QuotaMonth, Rate: 2.5, Burst: 3, Tasks: []string{"*"}, Models: []string{"main"}}}},
		{"http", c.HTTP, HTTP{MaxBodyBytes: 2048, MaxWait: 10 * time.Second, MaxInflightBodyBytes: 8 << 20, MaxHeaderBytes: 16 << 10,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 30 * time.Second}},
		{"log", c.Log, Log{Level: "debug", Format: "json"}},
		{"aws endpoint kept", c.AWSEndpoint, "http://aws.local:4566"},
		{"sqs endpoint wins", AWSEndpoint(c, "transport.sqs"), "http://127.0.0.1:4566"},
		{"dynamodb falls back", AWSEndpoint(c, "store.dynamodb"), "http://aws.local:4566"},
		{"bedrock model endpoint", AWSEndpoint(c, "models.claude"), "http://127.0.0.1:4000"},
		{"unknown model", AWSEndpoint(c, "models.nope"), "http://aws.local:4566"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of a loaded config = %v", err)
	}
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	t.Parallel()
	c := Config{Transport: Transport{Kind: "rabbit"}, Workers: Workers{Concurrency: -1, JobTimeout: -time.Second}}
	c.ApplyDefaults()
	got := problemsOf(t, c.Validate())
	want := []schemas.FieldError{
		{Field: "transport.kind", Message: "must be one of embedded, sqs, kafka"},
		{Field: "workers.concurrency", Message: "must be at least 1"},
		{Field: "workers.job_timeout", Message: "must be a Go duration such as 250ms, 30s or 1m30s"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got  %v\n want %v", got, want)
	}

	ok := Default()
	ok.Models = append(ok.Models, Model{Name: "main", Provider: ProviderOpenAI, BaseURL: "http://x/v1", ModelID: "m"})
	ok.Routes = map[string]string{"default": "main"}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func TestApplyDefaultsIsIdempotentAndCopies(t *testing.T) {
	t.Parallel()
	models := []Model{{Name: "m", Provider: ProviderBedrock, ModelID: "x"}}
	c := Config{Models: models}
	c.ApplyDefaults()
	if models[0].Timeout != 0 {
		t.Error("ApplyDefaults changed the caller's Models slice")
	}
	if c.Models[0].Timeout != DefaultModelTimeout || c.Routes["default"] != "m" {
		t.Errorf("defaults not applied: %+v %v", c.Models[0], c.Routes)
	}
	again := c
	again.ApplyDefaults()
	if !reflect.DeepEqual(again, c) {
		t.Errorf("ApplyDefaults is not idempotent:\n%+v\n%+v", again, c)
	}
}
