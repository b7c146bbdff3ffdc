package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
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
		Addr:    ":8080",
		DataDir: "./data",
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
		},
		Workers: Workers{
			Concurrency:     64,
			MaxAttempts:     5,
			PriorityWeights: PriorityWeights{High: 6, Normal: 3, Low: 1},
			RetryBackoff:    RetryBackoff{Initial: time.Second, Max: time.Minute},
			ShutdownTimeout: 30 * time.Second,
			JobTimeout:      10 * time.Minute,
		},
		Models: []Model{{Name: "fast", Provider: "sim", Latency: 20 * time.Millisecond}},
		Routes: map[string]string{"default": "fast"},
		HTTP: HTTP{MaxBodyBytes: 1 << 20, MaxWait: time.Minute, MaxInflightBodyBytes: 64 << 20, MaxHeaderBytes: 64 << 10,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 75 * time.Second},
		Archive: Archive{Retention: 168 * time.Hour},
		Log:     Log{Level: "info", Format: "auto"},
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
		{"guardrails", c.Guardrails.Input, GuardrailPolicies{PII: &PIIPolicy{Entities: []string{"EMAIL"}, Action: "ANONYMIZE"}, Words: []string{"badword"}}},
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

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "addr: \":7000\"\ntransport: {kind: embedded}\nworkers: {concurrency: 2}\n")
	c, err := Load(path, []string{
		"INFLEET_ADDR=:9090",
		"INFLEET_DATA_DIR=/tmp/infleet",
		"INFLEET_TRANSPORT_KIND=kafka",
		"INFLEET_TRANSPORT_KAFKA_BROKERS= k1:9092, k2:9092 ,",
		"INFLEET_TRANSPORT_SQS_QUEUES_HIGH=urgent",
		"INFLEET_STORE_DYNAMODB_ENDPOINT=http://127.0.0.1:4567",
		"INFLEET_WORKERS_CONCURRENCY=128",
		"INFLEET_WORKERS_PRIORITY_WEIGHTS_STRICT=true",
		"INFLEET_NOTIFY_WEBHOOK_ALLOW_PRIVATE=1",
		"INFLEET_LOG_LEVEL=",         // empty: ignored
		"INFLEET_NOT_A_KEY=whatever", // unknown: ignored
		"INFLEET_SERVER=http://x:1",  // known non-config variable
		"INFLEET_WORKERS_MAX_ATTEMPTS=7",
		"INFLEET_WORKERS_MAX_ATTEMPTS=9", // the last one wins, as in a shell
		"OTHER_ADDR=:1",
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", c.Addr, ":9090"},
		{"data dir", c.DataDir, "/tmp/infleet"},
		{"sqlite path follows", c.Store.SQLite.Path, "/tmp/infleet/infleet.db"},
		{"kind", c.Transport.Kind, "kafka"},
		{"brokers", c.Transport.Kafka.Brokers, []string{"k1:9092", "k2:9092"}},
		{"queue", c.Transport.SQS.Queues.High, "urgent"},
		{"dynamodb endpoint", c.Store.DynamoDB.Endpoint, "http://127.0.0.1:4567"},
		{"concurrency", c.Workers.Concurrency, 128},
		{"strict", c.Workers.Strict, true},
		{"allow private", c.Notify.Webhook.AllowPrivate, true},
		{"level untouched", c.Log.Level, "info"},
		{"max attempts", c.Workers.MaxAttempts, 9},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestEnvOverrideProblemsNameTheVariable(t *testing.T) {
	t.Parallel()
	_, err := Load("", []string{
		"INFLEET_WORKERS_CONCURRENCY=lots",
		"INFLEET_WORKERS_STRICT=maybe",
		"INFLEET_TRANSPORT_KIND=rabbit",
		"INFLEET_TRANSPORT_SQS_VISIBILITY_TIMEOUT=60",
	})
	got := problemsOf(t, err)
	want := []schemas.FieldError{
		{Field: "workers.concurrency", Message: `INFLEET_WORKERS_CONCURRENCY="lots": must be an integer`},
		{Field: "workers.strict", Message: `INFLEET_WORKERS_STRICT="maybe": must be true or false`},
		{Field: "transport.kind", Message: "must be one of embedded, sqs, kafka (set by INFLEET_TRANSPORT_KIND)"},
		{Field: "transport.sqs.visibility_timeout", Message: "must be a Go duration such as 250ms, 30s or 1m30s (set by INFLEET_TRANSPORT_SQS_VISIBILITY_TIMEOUT)"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got  %v\n want %v", got, want)
	}
}

func TestEnvOverrideOverANonMapping(t *testing.T) {
	t.Parallel()
	_, err := Load(writeConfig(t, "transport: sqs\n"), []string{"INFLEET_TRANSPORT_KIND=sqs"})
	got := problemsOf(t, err)
	want := []schemas.FieldError{{Field: "transport", Message: "must be an object, not a string"}}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got  %v\n want %v", got, want)
	}
}

func TestLoadListsEveryStructuralProblem(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
adr: ":8080"
transport: {kind: rabbit, sqs: {visibility_timeout: soon}}
store: {kind: sqlite, sqlite: {path: ""}}
workers: {concurrency: "many", max_attempts: 0, priority_weights: {high: -1}}
models:
  - {name: "a b", provider: gpt, latency: 10}
http: {max_body_bytes: 10}
log: {format: text}
`)
	_, err := Load(path, nil)
	got := problemsOf(t, err)
	want := []schemas.FieldError{
		{Field: "adr", Message: "is not a known field (did you mean addr?)"},
		{Field: "http.max_body_bytes", Message: "must be at least 1024"},
		{Field: "log.format", Message: "must be one of json, pretty, auto"},
		{Field: "models[0].latency", Message: "must be a Go duration such as 250ms, 30s or 1m30s (write zero as 0s)"},
		{Field: "models[0].name", Message: "must start with a letter or digit and contain only letters, digits and . _ : -"},
		{Field: "models[0].provider", Message: "must be one of sim, bedrock, openai"},
		{Field: "store.sqlite.path", Message: "must not be empty"},
		{Field: "transport.kind", Message: "must be one of embedded, sqs, kafka"},
		{Field: "transport.sqs.visibility_timeout", Message: "must be a Go duration such as 250ms, 30s or 1m30s"},
		{Field: "workers.concurrency", Message: "must be an integer, not a string"},
		{Field: "workers.max_attempts", Message: "must be at least 1"},
		{Field: "workers.priority_weights.high", Message: "must be at least 1"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got  %v\n want %v", strings.ReplaceAll(err.Error(), "\n", "\n\t"), want)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "invalid configuration in "+path) || strings.Count(msg, "\n") != len(want) {
		t.Errorf("Error() = %q, want a heading naming the file and one line per problem", msg)
	}
}

func TestLoadListsEverySemanticProblem(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
transport: {kind: kafka, kafka: {topics: {high: t, normal: t}, dead_letter_topic: t}}
store: {kind: postgres}
results: {kind: s3}
workers: {retry_backoff: {initial: 2m}}
models:
  - {name: fast, provider: sim, fallbacks: [fast, ghost]}
  - {name: fast, provider: openai}
  - {name: rock, provider: bedrock, fallbacks: [fast, fast]}
routes: {summarize: main, "a b": fast}
triggers: {s3: [{bucket: b, task: t, model: nope}]}
auth:
  api_keys:
    - {key: same-key-1, tenant: a, models: ["*", main]}
    - {key: same-key-1, tenant: b}
`)
	_, err := Load(path, nil)
	got := problemsOf(t, err)
	const hint = "configured models: fast, fast, rock"
	want := []schemas.FieldError{
		{Field: "models[0].fallbacks[0]", Message: "is the model itself; name another model"},
		{Field: "models[0].fallbacks[1]", Message: "names model ghost, which is not configured; " + hint},
		{Field: "models[1].name", Message: "fast is already the name of models[0]; model names must be unique"},
		{Field: "models[1].base_url", Message: "is required for provider openai (e.g. http://127.0.0.1:9000/v1)"},
		{Field: "models[1].model_id", Message: "is required for provider openai (e.g. gpt-4o-mini)"},
		{Field: "models[2].model_id", Message: "is required for provider bedrock (e.g. anthropic.claude-sonnet-4-20250514)"},
		{Field: "models[2].fallbacks[1]", Message: "repeats fast; list each fallback once"},
		{Field: `routes["a b"]`, Message: "is not a task name: it must start with a letter or digit and contain only letters, digits and . _ : -"},
		{Field: "routes.summarize", Message: "names model main, which is not configured; " + hint},
		{Field: "routes.default", Message: "is required: name the model of tasks without a route of their own (e.g. default: fast)"},
		{Field: "transport.kafka.brokers", Message: `is required when transport.kind is kafka (e.g. ["127.0.0.1:9092"] or INFLEET_TRANSPORT_KAFKA_BROKERS=host1:9092,host2:9092)`},
		{Field: "transport.kafka.topics.normal", Message: "t is also transport.kafka.topics.high; every priority and the dead letters need their own"},
		{Field: "transport.kafka.dead_letter_topic", Message: "t is also transport.kafka.topics.high; every priority and the dead letters need their own"},
		{Field: "store.postgres.dsn", Message: "is required when store.kind is postgres (postgres://user:pass@host:5432/db)"},
		{Field: "results.s3.bucket", Message: "is required when results.kind is s3 (e.g. infleet-results)"},
		{Field: "workers.retry_backoff.initial", Message: "is 2m0s, more than workers.retry_backoff.max (1m0s); lower it or raise max"},
		{Field: "triggers.s3[0].model", Message: "names model nope, which is not configured; " + hint},
		{Field: "auth.api_keys[0].models[1]", Message: `names model main, which is not configured; use "*" or ` + hint},
		{Field: "auth.api_keys[1].key", Message: "is the same as auth.api_keys[0].key; give every client its own key"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got  %v\n want %v", strings.ReplaceAll(err.Error(), "\n", "\n\t"), want)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("INFLEET_CONFIG names the file", func(t *testing.T) {
		t.Parallel()
		path := writeConfig(t, "addr: \":1234\"\n")
		c, err := Load("", []string{"INFLEET_CONFIG=" + path})
		if err != nil || c.Addr != ":1234" {
			t.Errorf("Load = %v, %v; want addr :1234", c.Addr, err)
		}
	})
	t.Run("not YAML", func(t *testing.T) {
		t.Parallel()
		_, err := Load(writeConfig(t, "addr: [\n"), nil)
		got := problemsOf(t, err)
		if len(got) != 1 || got[0].Field != "" || !strings.HasPrefix(got[0].Message, "not valid YAML: ") {
			t.Errorf("problems = %v, want one YAML syntax problem", got)
		}
	})
	t.Run("not a mapping", func(t *testing.T) {
		t.Parallel()
		_, err := Load(writeConfig(t, "- a\n- b\n"), nil)
		got := problemsOf(t, err)
		if want := []schemas.FieldError{{Message: "must be an object, not an array"}}; !slices.Equal(got, want) {
			t.Errorf("problems = %v, want %v", got, want)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		t.Parallel()
		c, err := Load(writeConfig(t, "# nothing\n"), nil)
		if err != nil || !reflect.DeepEqual(c, Default()) {
			t.Errorf("Load = %+v, %v; want the default", c, err)
		}
	})
	t.Run("odd YAML scalars", func(t *testing.T) {
		t.Parallel()
		_, err := Load(writeConfig(t, "addr: .nan\ndata_dir: !!timestamp 2001-12-14\nroutes: {1: fast, default: 2}\n"), nil)
		got := problemsOf(t, err)
		want := []schemas.FieldError{
			{Field: "addr", Message: "must be host:port, e.g. :8080 or 127.0.0.1:8080"},
			{Field: "routes.default", Message: "must be a string, not a number"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("problems = %v, want %v", got, want)
		}
	})
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

func TestEnvNames(t *testing.T) {
	t.Parallel()
	names := EnvNames()
	for _, want := range []string{
		"INFLEET_ADDR", "INFLEET_DATA_DIR", "INFLEET_TRANSPORT_KIND", "INFLEET_TRANSPORT_SQS_QUEUES_HIGH",
		"INFLEET_TRANSPORT_KAFKA_BROKERS", "INFLEET_STORE_DYNAMODB_ENDPOINT", "INFLEET_WORKERS_CONCURRENCY",
		"INFLEET_WORKERS_PRIORITY_WEIGHTS_STRICT", "INFLEET_WORKERS_STRICT", "INFLEET_WORKERS_RETRY_BACKOFF_INITIAL",
		"INFLEET_HTTP_MAX_BODY_BYTES", "INFLEET_NOTIFY_WEBHOOK_SECRET", "INFLEET_RESULTS_S3_ENDPOINT",
		"INFLEET_ARCHIVE_RETENTION", "INFLEET_LOG_FORMAT", "INFLEET_GUARDRAILS_INPUT_WORDS",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("EnvNames() lacks %s", want)
		}
	}
	for _, name := range names {
		if strings.Contains(name, "MODELS") || strings.Contains(name, "ROUTES") || strings.Contains(name, "API_KEYS") {
			t.Errorf("EnvNames() has %s, which is inside a list or map", name)
		}
	}
	if key, ok := EnvKey("INFLEET_WORKERS_PRIORITY_WEIGHTS_STRICT"); !ok || key != "workers.priority_weights.strict" {
		t.Errorf("EnvKey = %q, %v", key, ok)
	}
	unknown := UnknownEnv([]string{"INFLEET_ADDR=1", "INFLEET_ADRR=1", "INFLEET_CONFIG=x", "INFLEET_API_KEY=k",
		"INFLEET_SERVER=s", "INFLEET_AWS_ENDPOINT=e", "HOME=/", "INFLEET_ADRR=2"})
	if !slices.Equal(unknown, []string{"INFLEET_ADRR"}) {
		t.Errorf("UnknownEnv = %v, want [INFLEET_ADRR]", unknown)
	}
}

// schemaPaths lists every key the config schema allows, as dotted paths with "[]" for array
// items and "<task>" for the keys of routes.
func schemaPaths(t *testing.T) []string {
	t.Helper()
	var schema map[string]any
	if err := json.Unmarshal(schemas.ConfigSchema(), &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	var out []string
	var walk func(node map[string]any, path string)
	walk = func(node map[string]any, path string) {
		node = deref(node, defs)
		if props, ok := node["properties"].(map[string]any); ok {
			for k, sub := range props {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(sub.(map[string]any), p)
			}
			return
		}
		if items, ok := node["items"].(map[string]any); ok {
			if _, isObj := deref(items, defs)["properties"]; isObj {
				walk(items, path+"[]")
				return
			}
		}
		if ap, ok := node["additionalProperties"].(map[string]any); ok {
			walk(ap, path+".<task>")
			return
		}
		out = append(out, path)
	}
	walk(schema, "")
	slices.Sort(out)
	return out
}

// structPaths lists the same for the Config struct, from its yaml tags.
func structPaths(typ reflect.Type, path string, out *[]string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			structPaths(ft, p, out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			structPaths(ft.Elem(), p+"[]", out)
		case ft.Kind() == reflect.Map:
			*out = append(*out, p+".<task>")
		default:
			*out = append(*out, p)
		}
	}
}

func TestSchemaAndStructAgree(t *testing.T) {
	t.Parallel()
	var fromStruct []string
	structPaths(reflect.TypeFor[Config](), "", &fromStruct)
	slices.Sort(fromStruct)
	fromSchema := schemaPaths(t)
	if !slices.Equal(fromStruct, fromSchema) {
		t.Errorf("Config struct and config schema disagree:\n struct %v\n schema %v", fromStruct, fromSchema)
	}
	if len(fromSchema) < 60 {
		t.Errorf("only %d schema paths; the walk is broken", len(fromSchema))
	}
}

// readmeConfigSection returns ../README.md's first ```yaml block after <!-- config-example -->
// and the keys of its settings table (brace alternatives expanded).
func readmeConfigSection(t *testing.T) (example string, tableKeys []string) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	_, after, ok := strings.Cut(string(readme), "\n<!-- config-example -->\n")
	if !ok {
		t.Fatal("README.md has no line <!-- config-example -->")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("README.md has no ```yaml block after <!-- config-example -->")
	}
	example, rest, ok := strings.Cut(block, "\n```")
	if !ok {
		t.Fatal("README.md's config example is not closed")
	}
	for line := range strings.Lines(rest) {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(cells[1], -1) {
			tableKeys = append(tableKeys, expandBraces(m[1])...)
		}
	}
	return example, tableKeys
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// expandBraces expands one {a,b,c} group: "x.{a,b}.y" -> "x.a.y", "x.b.y".
func expandBraces(s string) []string {
	before, rest, ok := strings.Cut(s, "{")
	if !ok {
		return []string{s}
	}
	alts, after, ok := strings.Cut(rest, "}")
	if !ok {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(alts, ",") {
		out = append(out, expandBraces(before+alt+after)...)
	}
	return out
}

func TestREADMEExampleValidates(t *testing.T) {
	t.Parallel()
	example, _ := readmeConfigSection(t)
	c, err := Load(writeConfig(t, example), nil)
	if err != nil {
		t.Fatalf("README's config example does not load: %v", err)
	}
	if len(c.Models) != 3 || c.Routes["summarize"] != "main" {
		t.Errorf("README example loaded oddly: %+v", c)
	}
}

func TestREADMETableCoversEveryKey(t *testing.T) {
	t.Parallel()
	_, keys := readmeConfigSection(t)
	for _, p := range schemaPaths(t) {
		if !slices.Contains(keys, p) {
			t.Errorf("README settings table lacks %s", p)
		}
	}
	schemaSet := schemaPaths(t)
	for _, k := range keys {
		if !slices.Contains(schemaSet, k) {
			t.Errorf("README settings table has %s, which the schema does not know", k)
		}
	}
}

// FuzzLoad checks that no YAML input panics the loader, and that a config it accepts passes
// Validate again (the schema, the struct and the defaults agree).
func FuzzLoad(f *testing.F) {
	for _, s := range []string{fullConfig, "", "addr: [", "transport: 5", "models: [{name: x, provider: sim}]\nroutes: {default: x}",
		"a: &a [*a]", "workers: {concurrency: 1e3}", "routes: {1: 2}", "? [a]\n: b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data, []string{"INFLEET_WORKERS_CONCURRENCY=3"})
		if err != nil {
			if _, ok := errors.AsType[*ValidationError](err); !ok {
				t.Fatalf("parse error %T is not a *ValidationError: %v", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v\n%s", err, data)
		}
	})
}

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

func TestAliasBombIsRefused(t *testing.T) {
	t.Parallel()
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g"} {
		bomb += fmt.Sprintf("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	got := problemsOf(t, func() error { _, err := parse([]byte(bomb), nil); return err }())
	if len(got) != 1 || !strings.Contains(got[0].Message, "aliases") {
		t.Fatalf("problems %v, want one about aliases", got)
	}
	if _, err := parse([]byte("transport: {kafka: {topics: &t {high: a, normal: b, low: c}}, sqs: {queues: *t}}\n"), nil); err != nil {
		t.Fatalf("a plain alias: %v", err)
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
