package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/infleet/infleet/schemas"
)

func TestLoadListsEveryStructuralProblem(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
adr: ":8080"
durability: disk
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
		{Field: "durability", Message: "must be one of process, fsync"},
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
