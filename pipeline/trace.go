package pipeline

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

var traceContext = propagation.TraceContext{}

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
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}
