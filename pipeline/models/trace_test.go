package models_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/pipeline/models"
)

func attrOf(kvs []attribute.KeyValue, key string) attribute.Value {
	for _, kv := range kvs {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestModelCallAttemptsAreSpansWithRetriesAndFallbacksAsEvents: a primary that is down is tried
// twice (a retry event between), then its fallback answers (a fallback event); each attempt is
// a client span with the GenAI attributes, and the provider receives the attempt's traceparent.
func TestModelCallAttemptsAreSpansWithRetriesAndFallbacksAsEvents(t *testing.T) {
	t.Parallel()
	p := fastPolicy()
	p.MaxAttempts = 2
	b := setup(t, map[string]fmsim.Faults{"primary": {Down: true}, "backup": {}}, p,
		models.ModelSpec{Name: "primary", System: "openai", Fallbacks: []string{"backup"}},
		models.ModelSpec{Name: "backup", System: "openai"})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, invoke := tp.Tracer("test").Start(context.Background(), "invoke")
	resp, err := b.fleet.Client("primary").Invoke(ctx, request("hello there"))
	invoke.End()
	if err != nil || resp.Model != "backup" {
		t.Fatalf("Invoke = %+v, %v; want backup's answer", resp, err)
	}

	var attempts []sdktrace.ReadOnlySpan
	var parent sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "invoke" {
			parent = s
		} else {
			attempts = append(attempts, s)
		}
	}
	wantNames := []string{"chat primary", "chat primary", "chat backup"}
	if len(attempts) != len(wantNames) {
		t.Fatalf("%d attempt spans, want %d", len(attempts), len(wantNames))
	}
	for i, s := range attempts {
		a := s.Attributes()
		if s.Name() != wantNames[i] || s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("attempt %d: span %s with parent %s", i, s.Name(), s.Parent().SpanID())
		}
		if attrOf(a, "gen_ai.system").AsString() != "openai" || attrOf(a, "gen_ai.request.model").AsString() != wantNames[i][5:] ||
			attrOf(a, "gen_ai.operation.name").AsString() != "chat" {
			t.Errorf("attempt %d: attributes %v", i, a)
		}
		last := i == len(attempts)-1
		if failed := s.Status().Code == codes.Error; failed == last {
			t.Errorf("attempt %d: status %v", i, s.Status())
		}
		if last {
			if attrOf(a, "gen_ai.usage.input_tokens").AsInt64() <= 0 || attrOf(a, "gen_ai.usage.output_tokens").AsInt64() <= 0 {
				t.Errorf("answering attempt has no token counts: %v", a)
			}
			if got, want := b.sim.Stats().LastTraceparent, "00-"+s.SpanContext().TraceID().String()+"-"+s.SpanContext().SpanID().String()+"-01"; got != want {
				t.Errorf("provider got traceparent %q, want the attempt's %q", got, want)
			}
		} else if attrOf(a, "error.type").AsString() == "" {
			t.Errorf("failed attempt %d has no error.type: %v", i, a)
		}
	}
	var events []string
	for _, e := range parent.Events() {
		events = append(events, e.Name)
	}
	if len(events) != 2 || events[0] != "retry" || events[1] != "fallback" {
		t.Fatalf("events on the calling span = %v, want [retry fallback]", events)
	}
	fb := parent.Events()[1].Attributes
	if attrOf(fb, "infleet.model").AsString() != "primary" || attrOf(fb, "infleet.fallback_model").AsString() != "backup" {
		t.Errorf("fallback event attributes %v", fb)
	}
	if attrOf(parent.Events()[0].Attributes, "infleet.attempt").AsInt64() != 2 {
		t.Errorf("retry event attributes %v", parent.Events()[0].Attributes)
	}
}
