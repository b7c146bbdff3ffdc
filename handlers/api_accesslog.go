package handlers

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// routeUnmatched is the route label of requests no pattern matched, keeping metric labels bounded.
const routeUnmatched = "unmatched"

// ObserveFunc receives every finished request: its route pattern (e.g. "POST /v1/jobs"), its
// status and how long it took. It is called on the request's goroutine, so it must be quick and
// safe for concurrent use.
type ObserveFunc func(route string, status int, d time.Duration)

// AccessLog returns HTTP middleware that logs each finished request (request_id, method, route,
// path, status, bytes, duration_ms) and reports it to observe when observe is not nil. Server
// errors log at error level, client errors at warn, the rest (with 499, a client that went
// away before the answer) at info.
func AccessLog(log zerolog.Logger, observe ObserveFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := wrapStatus(w)
			defer func() {
				d := time.Since(start)
				status := sw.status
				if status == 0 {
					// Nothing written (or the handler panicked past recover): net/http sends 200.
					status = http.StatusOK
				}
				route := sw.route
				if route == "" {
					route = routeUnmatched
				}
				if observe != nil {
					observe(route, status, d)
				}
				var ev *zerolog.Event
				switch {
				case status == statusClientClosed:
					ev = log.Info() // the client went away: nothing failed on either side
				case status >= 500:
					ev = log.Error()
				case status >= 400:
					ev = log.Warn()
				default:
					ev = log.Info()
				}
				ev.Ctx(traceContext(r)).Str("request_id", RequestIDFromContext(r.Context())).
					Str("method", r.Method).
					Str("route", route).
					Str("path", r.URL.Path).
					Int("status", status).
					Int64("bytes", sw.bytes).
					Float64("duration_ms", float64(d.Microseconds())/1000).
					Msg("http request")
			}()
			next.ServeHTTP(sw, r)
		})
	}
}
