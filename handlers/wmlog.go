package handlers

import (
	"github.com/ThreeDotsLabs/watermill"
	"github.com/rs/zerolog"
)

// WatermillLogger adapts a zerolog logger to watermill.LoggerAdapter. Watermill's info lines are
// logged at debug level: they describe router internals, not jobs.
func WatermillLogger(l zerolog.Logger) watermill.LoggerAdapter { return wmLogger{l: l} }

type wmLogger struct{ l zerolog.Logger }

func fieldsOf(e *zerolog.Event, f watermill.LogFields) *zerolog.Event {
	for k, v := range f {
		e = e.Interface(k, v)
	}
	return e
}

func (w wmLogger) Error(msg string, err error, f watermill.LogFields) {
	fieldsOf(w.l.Error().Err(err), f).Msg(msg)
}
func (w wmLogger) Info(msg string, f watermill.LogFields)  { fieldsOf(w.l.Debug(), f).Msg(msg) }
func (w wmLogger) Debug(msg string, f watermill.LogFields) { fieldsOf(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) Trace(msg string, f watermill.LogFields) { fieldsOf(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return wmLogger{l: w.l.With().Fields(map[string]any(f)).Logger()}
}
