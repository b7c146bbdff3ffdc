package handlers

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	validJob      = `{"task":"summarize","input":{"text":"hello world"},"priority":"high","params":{"max_tokens":64}}`
	testMaxBody   = 4096
	tenantHeader  = "X-Test-Tenant"
	waitTimeout   = 5 * time.Second
	contentTypeJS = "application/json"
)

// testBundle is the API under test and the peers it drives.
type testBundle struct {
	handler http.Handler
	server  *httptest.Server
	jobs    *memJobs
	mu      sync.Mutex
	// observed collects what the Observe hook saw, as "route status".
	observed []string
}

// testTenant stands in for the auth middleware: it takes the tenant from a test header.
func testTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t := r.Header.Get(tenantHeader); t != "" {
			r = r.WithContext(ContextWithTenant(r.Context(), t))
		}
		next.ServeHTTP(w, r)
	})
}

func setup(t *testing.T, edit ...func(*APIConfig)) *testBundle {
	t.Helper()
	return setupOn(t, nil, edit...)
}

// setupOn is setup on a test server that server, when set, configures before it starts.
func setupOn(t *testing.T, server func(*http.Server), edit ...func(*APIConfig)) *testBundle {
	t.Helper()
	b := &testBundle{jobs: newMemJobs()}
	cfg := APIConfig{
		Jobs:         b.jobs,
		MaxBodyBytes: testMaxBody,
		Middleware:   []func(http.Handler) http.Handler{testTenant},
		Observe: func(route string, status int, _ time.Duration) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.observed = append(b.observed, fmt.Sprintf("%s %d", route, status))
		},
	}
	for _, e := range edit {
		e(&cfg)
	}
	h, err := NewAPI(cfg)
	if err != nil {
		t.Fatalf("NewAPI: %v", err)
	}
	b.handler = h
	b.server = httptest.NewUnstartedServer(h)
	if server != nil {
		server(b.server.Config)
	}
	b.server.Start()
	t.Cleanup(b.server.Close)
	return b
}

// do sends a request to the test server; headers are "Name: value" pairs.
func (b *testBundle) do(t *testing.T, method, path, body string, headers ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.server.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", contentTypeJS)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := b.server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// submit creates a job through the API and returns its id.
func (b *testBundle) submit(t *testing.T, headers ...string) string {
	t.Helper()
	resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, headers...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	var acc accepted
	decodeInto(t, resp, &acc)
	return acc.JobID
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func decodeInto(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	body := readAll(t, resp)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

// readProblem checks that resp is a problem document of status and slug and returns it.
func readProblem(t *testing.T, resp *http.Response, status int, slug string) Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, readAll(t, resp))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p Problem
	decodeInto(t, resp, &p)
	if p.Status != status || p.Type != ProblemTypeBase+slug || p.Title == "" || p.Instance == "" {
		t.Fatalf("problem = %+v, want status %d type %s with title and instance", p, status, slug)
	}
	return p
}

func fields(p Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}
