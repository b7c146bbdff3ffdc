package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/infleet/infleet/schemas"
)

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "addr: \":7000\"\ntransport: {kind: embedded}\nworkers: {concurrency: 2}\n")
	c, err := Load(path, []string{
		"INFLEET_ADDR=:9090",
		"INFLEET_DATA_DIR=/tmp/infleet",
		"INFLEET_DURABILITY=fsync",
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
		{"durability", c.Durability, "fsync"},
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
		"INFLEET_DURABILITY=disk",
		"INFLEET_TRANSPORT_SQS_VISIBILITY_TIMEOUT=60",
	})
	got := problemsOf(t, err)
	want := []schemas.FieldError{
		{Field: "workers.concurrency", Message: `INFLEET_WORKERS_CONCURRENCY="lots": must be an integer`},
		{Field: "workers.strict", Message: `INFLEET_WORKERS_STRICT="maybe": must be true or false`},
		{Field: "durability", Message: "must be one of process, fsync (set by INFLEET_DURABILITY)"},
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
