package handlers

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// scrapeTarget is a stand-in for the Prometheus handler.
var scrapeTarget = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	_, _ = io.WriteString(w, "infleet_up 1\n")
})

func basic(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestProtectedMetrics checks /metrics behind a bearer token and basic auth, on the API (with
// API-key authentication on, which leaves /metrics to its own credential) and on a worker's
// operations surface.
func TestProtectedMetrics(t *testing.T) {
	t.Parallel()
	auth := MetricsAuth{BearerToken: "s3cret-token", Username: "prom", Password: "pa55"}
	protected := ProtectMetrics(scrapeTarget, auth, zerolog.Nop())
	keys, err := NewAPIKeys([]APIKeySpec{{Key: keyAcme, Principal: Principal{Tenant: "acme", Tasks: []string{"*"}, Models: []string{"*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	api := setup(t, func(c *APIConfig) {
		c.Metrics = protected
		c.Middleware = []func(http.Handler) http.Handler{Authenticate(AuthConfig{Verifiers: []Verifier{keys}})}
	})
	ops := httptest.NewServer(NewOpsAPI(func(_ context.Context) error { return nil }, protected, zerolog.Nop()))
	t.Cleanup(ops.Close)
	worker := &testBundle{server: ops}

	for _, b := range []*testBundle{api, worker} {
		for _, tc := range []struct {
			name    string
			headers []string
			want    int
		}{
			{"no credential", nil, http.StatusUnauthorized},
			{"wrong token", []string{"Authorization: Bearer nope"}, http.StatusUnauthorized},
			{"token prefix", []string{"Authorization: Bearer s3cret"}, http.StatusUnauthorized},
			{"token as basic password", []string{basic("prom", "s3cret-token")}, http.StatusUnauthorized},
			{"wrong user", []string{basic("root", "pa55")}, http.StatusUnauthorized},
			{"an API key", []string{"x-api-key: " + keyAcme}, http.StatusUnauthorized},
			{"bearer token", []string{"Authorization: Bearer s3cret-token"}, http.StatusOK},
			{"bearer, any case", []string{"Authorization: bearer s3cret-token"}, http.StatusOK},
			{"basic auth", []string{basic("prom", "pa55")}, http.StatusOK},
		} {
			resp := b.do(t, http.MethodGet, "/metrics", "", tc.headers...)
			if tc.want == http.StatusOK {
				if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "infleet_up") {
					t.Errorf("%s: %d %s, want the metrics", tc.name, resp.StatusCode, body)
				}
				continue
			}
			p := readProblem(t, resp, http.StatusUnauthorized, SlugUnauthorized)
			if strings.Contains(p.Detail, "s3cret") || strings.Contains(p.Detail, "pa55") {
				t.Errorf("%s: the problem shows a secret: %q", tc.name, p.Detail)
			}
			ch := resp.Header.Values("WWW-Authenticate")
			if len(ch) != 2 || !strings.HasPrefix(ch[0], "Bearer ") || !strings.HasPrefix(ch[1], "Basic ") {
				t.Errorf("%s: WWW-Authenticate %q, want a Bearer and a Basic challenge", tc.name, ch)
			}
		}
		// The probes stay open.
		if resp := b.do(t, http.MethodGet, "/healthz", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("healthz behind metrics auth: %d", resp.StatusCode)
		}
	}
}

func TestUnprotectedMetricsAreOpen(t *testing.T) {
	t.Parallel()
	if h := ProtectMetrics(scrapeTarget, MetricsAuth{}, zerolog.Nop()); h == nil {
		t.Fatal("ProtectMetrics with no credential returned nil")
	}
	b := setup(t, func(c *APIConfig) { c.Metrics = ProtectMetrics(scrapeTarget, MetricsAuth{}, zerolog.Nop()) })
	if resp := b.do(t, http.MethodGet, "/metrics", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("open metrics: %d", resp.StatusCode)
	}
	// Basic auth alone: a bearer token is not accepted, and only one challenge is sent.
	b = setup(t, func(c *APIConfig) {
		c.Metrics = ProtectMetrics(scrapeTarget, MetricsAuth{Username: "prom", Password: "pa55"}, zerolog.Nop())
	})
	resp := b.do(t, http.MethodGet, "/metrics", "", "Authorization: Bearer pa55")
	readProblem(t, resp, http.StatusUnauthorized, SlugUnauthorized)
	if ch := resp.Header.Values("WWW-Authenticate"); len(ch) != 1 || !strings.HasPrefix(ch[0], "Basic ") {
		t.Errorf("WWW-Authenticate %q, want one Basic challenge", ch)
	}
	if resp := b.do(t, http.MethodGet, "/metrics", "", basic("prom", "pa55")); resp.StatusCode != http.StatusOK {
		t.Fatalf("basic auth: %d", resp.StatusCode)
	}
}
