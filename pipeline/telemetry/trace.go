package telemetry

import (
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// TraceHook is a zerolog.Hook that adds trace_id and span_id to every event whose context
// (zerolog's Event.Ctx or Context.Ctx) carries a valid span context: one being recorded, or
// one carried from a traceparent. Events without a context are left as they are. Add it to the
// process logger once (Logger.Hook); every logger derived from it then carries it.
type TraceHook struct{}

// Run implements zerolog.Hook.
func (TraceHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	sc := trace.SpanContextFromContext(e.GetCtx())
	if sc.IsValid() {
		e.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
	}
}
