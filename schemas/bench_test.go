package schemas

import (
	"bytes"
	"encoding/json"
	"testing"
)

const benchJob = `{"task":"summarize","input":{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Summarize the attached text please."}]},"model":"main","params":{"max_tokens":1024,"temperature":0.2,"stop":["\n\n"]},"priority":"high","callback_url":"https://example.com/hook","metadata":{"customer":"acme","n":3},"idempotency_key":"k-123"}`

// BenchmarkValidateJob measures validation of a typical, valid job body (decoding excluded).
func BenchmarkValidateJob(b *testing.B) {
	dec := json.NewDecoder(bytes.NewReader([]byte(benchJob)))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		b.Fatal(err)
	}
	if errs := ValidateJob(doc); errs != nil {
		b.Fatalf("benchmark job is invalid: %v", errs)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ValidateJob(doc) != nil {
			b.Fatal("invalid")
		}
	}
}

// BenchmarkValidateJobInvalid measures the error path: a body with several problems.
func BenchmarkValidateJobInvalid(b *testing.B) {
	var doc any
	if err := json.Unmarshal([]byte(`{"task":"","input":{},"priority":"urgent","params":{"max_tokens":0,"temprature":1}}`), &doc); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(ValidateJob(doc)) == 0 {
			b.Fatal("valid")
		}
	}
}
