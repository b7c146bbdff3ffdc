package handlers

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/rs/zerolog"
)

// WatermillLogger adapts a zerolog logger to watermill.LoggerAdapter. Watermill's info lines are
// logged at debug level: they describe router internals, not jobs. Its error lines are errors,
// except the router's report of a job handed back at shutdown (a RetryError with HandedBack),
// which is expected and logged at debug: the shutdown logs one summary of them instead.
func WatermillLogger(l zerolog.Logger) watermill.LoggerAdapter { return wmLogger{l: l} }

type wmLogger struct{ l zerolog.Logger }

func fieldsOf(e *zerolog.Event, f watermill.LogFields) *zerolog.Event {
	for k, v := range f {
		e = e.Interface(k, v)
	}
	return e
}

func (w wmLogger) Error(msg string, err error, f watermill.LogFields) {
	if re, ok := errors.AsType[*RetryError](err); ok && re.HandedBack {
		fieldsOf(w.l.Debug().Err(err), f).Msg(msg)
		return
	}
	fieldsOf(w.l.Error().Err(err), f).Msg(msg)
}
func (w wmLogger) Info(msg string, f watermill.LogFields)  { fieldsOf(w.l.Debug(), f).Msg(msg) }
func (w wmLogger) Debug(msg string, f watermill.LogFields) { fieldsOf(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) Trace(msg string, f watermill.LogFields) { fieldsOf(w.l.Trace(), f).Msg(msg) }
func (w wmLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return wmLogger{l: w.l.With().Fields(map[string]any(f)).Logger()}
}
