package pipeline

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the spans infleet makes.
const TracerName = "github.com/infleet/infleet"

var traceContext = propagation.TraceContext{}

// noSpan is the span StartSpan returns when there is nothing to record: every method is a no-op.
var noSpan = trace.SpanFromContext(context.Background())

// ContextWithTraceparent returns ctx carrying the remote span context of a W3C traceparent
// header value; an empty or malformed value returns ctx unchanged.
func ContextWithTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// TraceparentFromContext returns the W3C traceparent of ctx's span context, or "" when it has
// none. Adapters that call out (model providers, webhooks) send it on.
func TraceparentFromContext(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// TraceID returns the hex trace id of ctx's span context (recording or carried from a
// traceparent), or "" when it has none. Logs carry it as trace_id.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// Tracing reports whether ctx's span records, so that a child span StartSpan makes would too.
// Callers check it before building what only a span needs (a name put together, attributes).
func Tracing(ctx context.Context) bool {
	return trace.SpanFromContext(ctx).IsRecording()
}

// StartSpan starts a span named name, of kind kind, as a child of ctx's span, from the tracer
// provider that made that span. When ctx's span records nothing (tracing is off, the trace is
// not sampled, or ctx has no span) it returns ctx unchanged and a span whose methods do
// nothing, allocating nothing: the pipeline calls it on every stage whatever the
// configuration. Set costly attributes only when the span IsRecording.
func StartSpan(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noSpan
	}
	return parent.TracerProvider().Tracer(TracerName).Start(ctx, name, trace.WithSpanKind(kind))
}

// EndSpan ends span, marking it failed with err when err is not nil.
func EndSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
