package schemas

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// decode parses JSON the way the ingress does: numbers as json.Number.
func decode(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func TestValidateJobAcceptsValidJobs(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"minimal text":    `{"task":"summarize","input":{"text":"hello"}}`,
		"messages":        `{"task":"chat","input":{"messages":[{"role":"system","content":""},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}}`,
		"s3 uri":          `{"task":"summarize","input":{"s3_uri":"s3://my-bucket.v2/docs/a b.txt"}}`,
		"everything":      benchJob,
		"job id":          `{"job_id":"0199a1b2-c3d4-7e8f-9a0b-1c2d3e4f5a6b","task":"t","input":{"text":"x"},"replay_name":"r-1"}`,
		"float params":    `{"task":"t","input":{"text":"x"},"params":{"max_tokens":1.0,"temperature":2,"top_p":0}}`,
		"exponent params": `{"task":"t","input":{"text":"x"},"params":{"max_tokens":2e3,"temperature":1e-1}}`,
		"uppercase URL":   `{"task":"t","input":{"text":"x"},"callback_url":"HTTPS://[::1]:8443/hook"}`,
		"empty params":    `{"task":"t","input":{"text":"x"},"params":{},"metadata":{}}`,
		"long unicode":    `{"task":"t","input":{"text":"x"},"idempotency_key":"` + strings.Repeat("é", 256) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if errs := ValidateJob(decode(t, body)); errs != nil {
				t.Errorf("ValidateJob(%s) = %v, want no problems", body, errs)
			}
			var plain any // float64 numbers, as json.Unmarshal gives them
			if err := json.Unmarshal([]byte(body), &plain); err != nil {
				t.Fatal(err)
			}
			if errs := ValidateJob(plain); errs != nil {
				t.Errorf("ValidateJob(float64 numbers) = %v, want no problems", errs)
			}
		})
	}
}

func TestValidateJobReportsEveryProblem(t *testing.T) {
	t.Parallel()
	const exactlyOne = "give exactly one of text, messages or s3_uri"
	const identMsg = "must start with a letter or digit and contain only letters, digits and . _ : -"
	tests := []struct {
		name string
		body string
		want []FieldError
	}{
		{"not an object", `[1]`, []FieldError{{"", "must be an object, not an array"}}},
		{"empty object", `{}`, []FieldError{{"input", "is required"}, {"task", "is required"}}},
		{"many at once",
			`{"task":"","input":{},"priority":"urgent","params":{"max_tokens":0,"temprature":1,"top_p":2},"callback_url":"ftp://x"}`,
			[]FieldError{
				{"callback_url", "must be an absolute http:// or https:// URL"},
				{"input", exactlyOne},
				{"params.max_tokens", "must be at least 1"},
				{"params.temprature", "is not a known field (did you mean temperature?)"},
				{"params.top_p", "must be at most 1"},
				{"priority", "must be one of high, normal, low"},
				{"task", "must not be empty"},
			}},
		{"two inputs", `{"task":"t","input":{"text":"x","s3_uri":"s3://bucket/k"}}`,
			[]FieldError{{"input", exactlyOne}}},
		{"unknown input kind", `{"task":"t","input":{"url":"x"}}`,
			[]FieldError{{"input.url", "is not a known field; known fields: messages, s3_uri, text"}}},
		{"empty text", `{"task":"t","input":{"text":""}}`, []FieldError{{"input.text", "must not be empty"}}},
		{"bad s3 uri", `{"task":"t","input":{"s3_uri":"https://bucket/key"}}`,
			[]FieldError{{"input.s3_uri", "must be s3://bucket/key"}}},
		{"no messages", `{"task":"t","input":{"messages":[]}}`,
			[]FieldError{{"input.messages", "must not be empty"}}},
		{"bad messages",
			`{"task":"t","input":{"messages":[{"role":"user","content":"ok"},{"role":"bot","content":1},{"content":"x","name":"n"}]}}`,
			[]FieldError{
				{"input.messages[1].content", "must be a string, not a number"},
				{"input.messages[1].role", "must be one of system, user, assistant"},
				{"input.messages[2].name", "is not a known field; known fields: content, role"},
				{"input.messages[2].role", "is required"},
			}},
		{"bad identifiers", `{"task":"a b","model":"../m","job_id":"` + strings.Repeat("x", 129) + `","input":{"text":"x"}}`,
			[]FieldError{
				{"job_id", "must be at most 128 characters long (it has 129)"},
				{"model", identMsg},
				{"task", identMsg},
			}},
		{"wrong types", `{"task":5,"input":"text","model":null,"metadata":[],"priority":1,"idempotency_key":""}`,
			[]FieldError{
				{"idempotency_key", "must not be empty"},
				{"input", "must be an object, not a string"},
				{"metadata", "must be an object, not an array"},
				{"model", "must be a string, not null"},
				{"priority", "must be one of high, normal, low"},
				{"task", "must be a string, not a number"},
			}},
		{"param ranges", `{"task":"t","input":{"text":"x"},"params":{"max_tokens":1.5,"temperature":-0.1,"stop":[""," ",3]}}`,
			[]FieldError{
				{"params.max_tokens", "must be an integer, not a number"},
				{"params.stop[0]", "must not be empty"},
				{"params.stop[2]", "must be a string, not a number"},
				{"params.temperature", "must be at least 0"},
			}},
		{"too many tokens", `{"task":"t","input":{"text":"x"},"params":{"max_tokens":200001,"top_p":1.5}}`,
			[]FieldError{{"params.max_tokens", "must be at most 200000"}, {"params.top_p", "must be at most 1"}}},
		{"relative callback", `{"task":"t","input":{"text":"x"},"callback_url":"/hook"}`,
			[]FieldError{{"callback_url", "must be an absolute http:// or https:// URL"}}},
		{"unknown top-level", `{"task":"t","input":{"text":"x"},"prio":"high","zzz":1}`,
			[]FieldError{
				{"prio", "is not a known field (did you mean priority?)"},
				{"zzz", "is not a known field; known fields: callback_url, context, idempotency_key, input, job_id, metadata, model, params, priority, replay_name, stream, task"},
			}},
		{"odd key", `{"task":"t","input":{"text":"x"},"a.b":1}`,
			[]FieldError{{`["a.b"]`, "is not a known field; known fields: callback_url, context, idempotency_key, input, job_id, metadata, model, params, priority, replay_name, stream, task"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ValidateJob(decode(t, tt.body))
			if !slices.Equal(got, tt.want) {
				t.Errorf("ValidateJob(%s):\n got  %v\n want %v", tt.body, got, tt.want)
			}
		})
	}
}

func TestValidateBatch(t *testing.T) {
	t.Parallel()
	job := `{"task":"t","input":{"text":"x"}}`
	many := "[" + strings.TrimSuffix(strings.Repeat(job+",", 101), ",") + "]"
	tests := []struct {
		name string
		body string
		want []FieldError
	}{
		{"valid", `{"jobs":[` + job + `,` + job + `]}`, nil},
		{"hundred", `{"jobs":` + strings.Replace(many, job+",", "", 1) + `}`, nil},
		{"empty", `{"jobs":[]}`, []FieldError{{"jobs", "must not be empty"}}},
		{"too many", `{"jobs":` + many + `}`, []FieldError{{"jobs", "must have at most 100 items (it has 101)"}}},
		{"missing", `{"job":[]}`, []FieldError{{"job", "is not a known field (did you mean jobs?)"}, {"jobs", "is required"}}},
		{"item problems", `{"jobs":[` + job + `,{"task":"t"},{"task":"t","input":{"text":"x"},"priority":"urgent"}]}`,
			[]FieldError{{"jobs[1].input", "is required"}, {"jobs[2].priority", "must be one of high, normal, low"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ValidateBatch(decode(t, tt.body))
			if !slices.Equal(got, tt.want) {
				t.Errorf("ValidateBatch:\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want []FieldError
	}{
		{"empty", `{}`, nil},
		{"durations", `{"transport":{"sqs":{"visibility_timeout":"1m30s"}},"workers":{"job_timeout":"0","shutdown_timeout":"1.5h","retry_backoff":{"initial":"250ms","max":"2µs"}}}`, nil},
		{"bad durations", `{"transport":{"sqs":{"visibility_timeout":"60"}},"workers":{"job_timeout":"-1s","shutdown_timeout":"99999999999h","retry_backoff":{"initial":5}}}`,
			[]FieldError{
				{"transport.sqs.visibility_timeout", "must be a Go duration such as 250ms, 30s or 1m30s"},
				{"workers.job_timeout", "must be a Go duration such as 250ms, 30s or 1m30s"},
				{"workers.retry_backoff.initial", "must be a Go duration such as 250ms, 30s or 1m30s (write zero as 0s)"},
				{"workers.shutdown_timeout", "must be a Go duration such as 250ms, 30s or 1m30s"},
			}},
		{"enums and unknowns", `{"transport":{"kind":"rabbit"},"store":{"kind":"redis"},"log":{"format":"text"},"worker":{}}`,
			[]FieldError{
				{"log.format", "must be one of json, pretty, auto"},
				{"store.kind", "must be one of sqlite, dynamodb, postgres"},
				{"transport.kind", "must be one of embedded, sqs, kafka"},
				{"worker", "is not a known field (did you mean workers?)"},
			}},
		{"models", `{"models":[{"name":"fast","provider":"sim","latency":"20ms"},{"provider":"gpt","region":"mars"}]}`,
			[]FieldError{
				{"models[1].name", "is required"},
				{"models[1].provider", "must be one of sim, bedrock, openai"},
				{"models[1].region", "must be an AWS region such as us-east-1"},
			}},
		{"addr and urls", `{"addr":"8080","notify":{"webhook":{"url":"example.com"},"sns":{"topic_arn":"topic"}}}`,
			[]FieldError{
				{"addr", "must be host:port, e.g. :8080 or 127.0.0.1:8080"},
				{"notify.sns.topic_arn", "must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME) or empty"},
				{"notify.webhook.url", "must be an http:// or https:// URL, or empty"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ValidateConfig(decode(t, tt.body))
			if !slices.Equal(got, tt.want) {
				t.Errorf("ValidateConfig:\n got  %v\n want %v", got, tt.want)
			}
		})
	}
}

func TestFieldErrorString(t *testing.T) {
	t.Parallel()
	if got := (FieldError{"task", "is required"}).String(); got != "task: is required" {
		t.Errorf("String() = %q", got)
	}
	if got := (FieldError{"", "must be an object"}).String(); got != "must be an object" {
		t.Errorf("String() = %q", got)
	}
}

func TestSchemaAccessorsReturnCopies(t *testing.T) {
	t.Parallel()
	for name, get := range map[string]func() []byte{"job": JobSchema, "batch": BatchSchema, "config": ConfigSchema, "openapi": OpenAPI} {
		a := get()
		if !json.Valid(a) {
			t.Fatalf("%s: not JSON", name)
		}
		a[0] = 'X'
		if b := get(); b[0] == 'X' {
			t.Errorf("%s: changing the returned slice changed the next result", name)
		}
	}
}

// TestOpenAPI checks the served document: every route of the contract is described, every local
// $ref resolves, the job schema is inlined and no private extension leaks.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	raw := OpenAPI()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	paths := doc["paths"].(map[string]any)
	for route, methods := range map[string][]string{
		"/v1/jobs":                 {"post", "get"},
		"/v1/jobs:batch":           {"post"},
		"/v1/jobs/{id}":            {"get", "delete"},
		"/v1/jobs/{id}/result":     {"get"},
		"/v1/jobs/{id}/events":     {"get"},
		"/healthz":                 {"get"},
		"/readyz":                  {"get"},
		"/metrics":                 {"get"},
		"/openapi.json":            {"get"},
		"/v1/dead-letters":         {"get"},
		"/v1/dead-letters:redrive": {"post"},
		"/v1/replays":              {"post"},
		"/v1/stats":                {"get"},
		"/v1/models":               {"get"},
		"/v1/usage":                {"get"},
		"/v1/jobs/{id}/request":    {"get"},
	} {
		item, ok := paths[route].(map[string]any)
		if !ok {
			t.Errorf("route %s is not described", route)
			continue
		}
		for _, m := range methods {
			if _, ok := item[m]; !ok {
				t.Errorf("%s %s is not described", strings.ToUpper(m), route)
			}
		}
	}
	job := doc["components"].(map[string]any)["schemas"].(map[string]any)["Job"].(map[string]any)
	if _, ok := job["properties"].(map[string]any)["task"]; !ok {
		t.Error("components.schemas.Job is not the inlined job schema")
	}
	for _, private := range []string{"x-errors", `"$defs"`, `"$id"`} {
		if bytes.Contains(raw, []byte(private)) {
			t.Errorf("served document contains %s, which OpenAPI tools do not resolve", private)
		}
	}
	for _, hoisted := range []string{"JobInput", "JobParams"} {
		if _, ok := doc["components"].(map[string]any)["schemas"].(map[string]any)[hoisted]; !ok {
			t.Errorf("components.schemas.%s (the job schema's $defs) is missing", hoisted)
		}
	}
	var refs []string
	collectRefs(doc, &refs)
	for _, ref := range refs {
		if !strings.HasPrefix(ref, "#/") {
			t.Errorf("$ref %s is not a pointer into the document", ref)
			continue
		}
		if resolvePointer(doc, ref) == nil {
			t.Errorf("$ref %s does not resolve", ref)
		}
	}
	if len(refs) < 20 {
		t.Errorf("found only %d refs; the walk is broken", len(refs))
	}
}

func collectRefs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["$ref"].(string); ok {
			*out = append(*out, r)
		}
		for _, c := range v {
			collectRefs(c, out)
		}
	case []any:
		for _, c := range v {
			collectRefs(c, out)
		}
	}
}

func resolvePointer(doc any, ref string) any {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	return cur
}

func TestValidateIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	docs := []any{
		decode(t, benchJob),
		decode(t, `{"task":"","input":{}}`),
		decode(t, `{"jobs":[{"task":"t"}]}`),
	}
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				ValidateJob(docs[i%2])
				ValidateBatch(docs[2])
				ValidateConfig(map[string]any{"addr": 1})
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// FuzzValidateJob checks that validation never panics, and that the fast path never accepts a
// job the schema rejects.
func FuzzValidateJob(f *testing.F) {
	for _, s := range []string{
		benchJob,
		`{"task":"t","input":{"text":"x"}}`,
		`{"task":"t","input":{"s3_uri":"s3://abc/k"},"params":{"max_tokens":1e3}}`,
		`{"task":"t","input":{"messages":[{"role":"user","content":"x"}]},"callback_url":"http://h/p"}`,
		`{"task":"","input":{},"priority":"urgent","params":{"max_tokens":0}}`,
		`[]`, `null`, `"x"`, `{"jobs":[]}`,
	} {
		f.Add([]byte(s))
	}
	full := loaded().job
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, useNumber := range []bool{true, false} {
			dec := json.NewDecoder(bytes.NewReader(data))
			if useNumber {
				dec.UseNumber()
			}
			var doc any
			if dec.Decode(&doc) != nil {
				return
			}
			errs := ValidateJob(doc)
			schemaErr := full.Validate(doc)
			if (len(errs) == 0) != (schemaErr == nil) {
				t.Fatalf("ValidateJob = %v but the schema says %v for %s", errs, schemaErr, data)
			}
			if schemaErr != nil && len(errs) == 0 {
				t.Fatalf("no FieldErrors for an invalid job %s", data)
			}
			for _, e := range errs {
				if e.Message == "" {
					t.Fatalf("empty message in %v for %s", errs, data)
				}
			}
			ValidateBatch(doc)
		}
	})
}
