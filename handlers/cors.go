package handlers

import (
	"net/http"
	"slices"
	"strings"
)

// corsMaxAge is how long browsers may cache a preflight answer, in seconds.
const corsMaxAge = "600"

// corsHeaders are the request headers a browser may send cross-origin.
var corsHeaders = strings.Join([]string{"Authorization", "Content-Type", "Idempotency-Key", "Prefer", "Traceparent", HeaderAPIKey}, ", ")

// corsExposed are the answer headers a browser script may read.
var corsExposed = strings.Join([]string{"Location", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
	"RateLimit-Policy", "X-Request-Id", HeaderIdempotentReplayed, HeaderPreferenceApplied}, ", ")

// CORS returns middleware allowing browser calls from origins ("*" for any). It answers
// preflight (OPTIONS with Access-Control-Request-Method) requests itself with 204, before
// authentication, since browsers send no credentials on them; other requests from an allowed
// origin get Access-Control-Allow-Origin naming that origin. Requests from other origins pass
// without CORS headers, so the browser refuses to expose the answer. With no origins it does
// nothing. Put it outside the API handler (it must see OPTIONS before route resolution).
func CORS(origins []string) func(http.Handler) http.Handler {
	any := slices.Contains(origins, "*")
	return func(next http.Handler) http.Handler {
		if len(origins) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" || (!any && !slices.Contains(origins, origin)) {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Origin", origin)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
				h.Set("Access-Control-Allow-Headers", corsHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Set("Access-Control-Expose-Headers", corsExposed)
			next.ServeHTTP(w, r)
		})
	}
}
