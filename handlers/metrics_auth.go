package handlers

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
)

// MetricsAuth is the credential GET /metrics requires. The zero value requires none.
type MetricsAuth struct {
	// BearerToken, when set, is accepted as "Authorization: Bearer BearerToken".
	BearerToken string
	// Username and Password, when Password is set, are accepted as HTTP basic auth.
	Username, Password string
}

// Enabled reports whether a credential is required.
func (a MetricsAuth) Enabled() bool { return a.BearerToken != "" || a.Password != "" }

// ProtectMetrics returns next (the Prometheus handler) behind auth: a request without an
// accepted credential gets a 401 problem with a WWW-Authenticate challenge for each scheme
// auth accepts, and never reaches next. Credentials are compared in constant time and never
// logged. With the zero auth it returns next unchanged. Safe for concurrent use.
func ProtectMetrics(next http.Handler, auth MetricsAuth, log zerolog.Logger) http.Handler {
	if next == nil || !auth.Enabled() {
		return next
	}
	var challenges []string
	if auth.BearerToken != "" {
		challenges = append(challenges, `Bearer realm="infleet-metrics"`)
	}
	if auth.Password != "" {
		challenges = append(challenges, `Basic realm="infleet-metrics", charset="UTF-8"`)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth.allows(r) {
			next.ServeHTTP(w, r)
			return
		}
		log.Info().Str("request_id", RequestIDFromContext(r.Context())).Str("remote_addr", r.RemoteAddr).
			Bool("had_credentials", r.Header.Get("Authorization") != "").Msg("metrics request not authenticated")
		for _, c := range challenges {
			w.Header().Add("WWW-Authenticate", c)
		}
		writeProblem(w, r, newProblem(http.StatusUnauthorized, SlugUnauthorized,
			"/metrics is protected (metrics.auth): send the scrape credential in the Authorization header"))
	})
}

// allows reports whether r carries a credential a accepts.
func (a MetricsAuth) allows(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	if a.BearerToken != "" {
		if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") &&
			secretEqual(strings.TrimSpace(token), a.BearerToken) {
			return true
		}
	}
	if a.Password != "" {
		if user, pass, ok := r.BasicAuth(); ok {
			// Both compared, so the time taken does not tell which one was wrong.
			userOK := secretEqual(user, a.Username)
			passOK := secretEqual(pass, a.Password)
			return userOK && passOK
		}
	}
	return false
}

// secretEqual compares two secrets in time that depends on neither their contents nor their
// lengths.
func secretEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
