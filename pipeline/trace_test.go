package pipeline_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/pipeline"
)

func TestStartSpanRecordsOnlyUnderARecordingSpan(t *testing.T) {
	t.Parallel()
	remote := pipeline.ContextWithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	for name, ctx := range map[string]context.Context{"no span": context.Background(), "remote parent only": remote} {
		got, span := pipeline.StartSpan(ctx, "stage", trace.SpanKindInternal)
		if got != ctx || span.IsRecording() || pipeline.Tracing(got) {
			t.Errorf("%s: StartSpan made a recording span or a new context", name)
		}
		pipeline.EndSpan(span, context.Canceled)
	}
	if pipeline.TraceID(remote) != "4bf92f3577b34da6a3ce929d0e0e4736" || pipeline.TraceID(context.Background()) != "" {
		t.Error("TraceID does not read the span context")
	}

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, parent := tp.Tracer("test").Start(remote, "parent")
	_, child := pipeline.StartSpan(ctx, "stage", trace.SpanKindInternal)
	pipeline.EndSpan(child, context.Canceled)
	parent.End()
	ended := rec.Ended()
	if len(ended) != 2 || ended[0].Name() != "stage" || ended[0].Parent().SpanID() != parent.SpanContext().SpanID() ||
		ended[0].Status().Description != context.Canceled.Error() || ended[0].SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("spans %v", ended)
	}
}

// TestStartSpanWithTracingOffAllocatesNothing (not parallel: AllocsPerRun counts the whole
// process's allocations).
func TestStartSpanWithTracingOffAllocatesNothing(t *testing.T) {
	remote := pipeline.ContextWithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if n := testing.AllocsPerRun(100, func() {
		_, span := pipeline.StartSpan(remote, "stage", trace.SpanKindInternal)
		pipeline.EndSpan(span, nil)
		_ = pipeline.Tracing(remote)
	}); n != 0 {
		t.Errorf("a span with tracing off allocates %v times", n)
	}
}

// BenchmarkStartSpan is the cost of one stage's span: under no span or a caller's traceparent
// only (tracing off: nothing is allocated), and under a recording span.
func BenchmarkStartSpan(b *testing.B) {
	remote := pipeline.ContextWithTraceparent(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	recording, parent := tp.Tracer("bench").Start(context.Background(), "parent")
	defer parent.End()
	for name, ctx := range map[string]context.Context{"off": context.Background(), "off-traceparent": remote, "on": recording} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, span := pipeline.StartSpan(ctx, "stage", trace.SpanKindInternal)
				pipeline.EndSpan(span, nil)
			}
		})
	}
}
