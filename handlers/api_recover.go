package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/rs/zerolog"
)

// Recover returns HTTP middleware that turns a panic in an inner handler into a 500 problem
// that reveals nothing of the server's internals, and logs the panic and its stack with the
// request id. http.ErrAbortHandler is re-raised, so net/http can abort the connection as asked.
func Recover(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := wrapStatus(w)
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				log.Error().
					Str("request_id", RequestIDFromContext(r.Context())).
					Str("method", r.Method).
					Str("path", r.URL.Path).
					Str("panic", fmt.Sprint(v)).
					Bytes("stack", debug.Stack()).
					Msg("http handler panicked")
				if sw.wroteHeader() {
					// Part of the answer is already out: cut the connection rather than send a
					// truncated body that looks complete.
					panic(http.ErrAbortHandler)
				}
				writeProblem(sw, r, newProblem(http.StatusInternalServerError, SlugInternal,
					"the server failed while handling this request; retry later, and report the "+
						"X-Request-Id header if it persists"))
			}()
			next.ServeHTTP(sw, r)
		})
	}
}
