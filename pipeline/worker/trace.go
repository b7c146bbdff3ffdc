package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// receivedKey is the context key of when the worker took a delivery, kept only while tracing.
type receivedKey struct{}

// startDelivery returns ctx carrying the trace context of d's traceparent and, with a Tracer,
// starts the delivery's span (process job) under it.
func (w *Worker) startDelivery(ctx context.Context, d Delivery) (context.Context, trace.Span) {
	ctx = pipeline.ContextWithTraceparent(ctx, d.Metadata[messages.MetaTraceparent])
	if w.cfg.Tracer == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	now := time.Now()
	ctx, span := w.cfg.Tracer.Start(ctx, "process job", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(now))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.message.id", d.MessageID))
		ctx = context.WithValue(ctx, receivedKey{}, now)
	}
	return ctx, span
}

// queueWait records the time a job's first attempt waited in the queue — from its message's
// published_at to the worker taking the delivery — as a span beside the delivery's, under the
// span that published it (under the delivery's when the message carries no trace). Later attempts have waited for earlier ones, not only for the queue,
// so they get none; nor does a message without published_at (a producer's own).
func (w *Worker) queueWait(ctx context.Context, d Delivery, jobID string) {
	received, ok := ctx.Value(receivedKey{}).(time.Time)
	if !ok {
		return
	}
	at, err := time.Parse(time.RFC3339Nano, d.Metadata[messages.MetaPublishedAt])
	if err != nil || at.After(received) {
		return
	}
	parent := pipeline.ContextWithTraceparent(context.Background(), d.Metadata[messages.MetaTraceparent])
	if pipeline.TraceID(parent) == "" {
		parent = ctx // published without a trace: the delivery's span is the root
	}
	_, span := w.cfg.Tracer.Start(parent, "queue wait", trace.WithTimestamp(at), trace.WithSpanKind(trace.SpanKindConsumer))
	span.SetAttributes(attribute.String("infleet.job_id", jobID))
	span.End(trace.WithTimestamp(received))
}
