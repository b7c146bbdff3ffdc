package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

func TestUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.submitErr = fmt.Errorf("queue job: %w: connection refused", pipeline.ErrUnavailable)
	resp := b.do(t, http.MethodPost, "/v1/jobs", validJob)
	p := readProblem(t, resp, http.StatusServiceUnavailable, SlugUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if strings.Contains(p.Detail, "connection refused") {
		t.Errorf("detail shows internals: %q", p.Detail)
	}
	resp = b.do(t, http.MethodPost, "/v1/jobs:batch", `{"jobs":[`+validJob+`]}`)
	readProblem(t, resp, http.StatusServiceUnavailable, SlugUnavailable)
}

// TestDiskFull answers a submission refused for want of space (the error the stores and the
// embedded queue return on a full disk) with a 503 that says so and asks for a longer wait.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.jobs.submitErr = fmt.Errorf("record job j1: %w: sqlite store: commit: database or disk is full (13): %w",
		pipeline.ErrUnavailable, pipeline.ErrStorageFull)
	for _, req := range []struct{ path, body string }{
		{"/v1/jobs", validJob},
		{"/v1/jobs:batch", `{"jobs":[` + validJob + `,` + validJob + `]}`},
	} {
		resp := b.do(t, http.MethodPost, req.path, req.body)
		p := readProblem(t, resp, http.StatusServiceUnavailable, SlugUnavailable)
		if got := resp.Header.Get("Retry-After"); got != "30" {
			t.Errorf("%s: Retry-After %q, want 30", req.path, got)
		}
		if !strings.Contains(p.Detail, "disk is full") || strings.Contains(p.Detail, "sqlite") {
			t.Errorf("%s: detail %q, want it to say the disk is full and show no internals", req.path, p.Detail)
		}
	}
}

func TestHealthReadyOpenAPIMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *APIConfig) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "infleet_up 1\n")
		})
	})
	resp := b.do(t, http.MethodGet, "/healthz", "")
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	if resp := b.do(t, http.MethodGet, "/readyz", ""); resp.StatusCode != 200 {
		t.Fatalf("readyz: %d", resp.StatusCode)
	}
	b.jobs.mu.Lock()
	b.jobs.readyErr = errors.New("job store: database is locked")
	b.jobs.mu.Unlock()
	resp = b.do(t, http.MethodGet, "/readyz", "")
	p := readProblem(t, resp, http.StatusServiceUnavailable, SlugUnavailable)
	if !strings.Contains(p.Detail, "job store") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz 503: %+v, Retry-After %q", p, resp.Header.Get("Retry-After"))
	}
	resp = b.do(t, http.MethodGet, "/metrics", "")
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "infleet_up") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, body)
	}
	resp = b.do(t, http.MethodGet, "/openapi.json", "")
	var doc map[string]any
	if resp.Header.Get("Content-Type") != contentTypeJS {
		t.Fatalf("openapi Content-Type %q", resp.Header.Get("Content-Type"))
	}
	decodeInto(t, resp, &doc)
	if _, ok := doc["openapi"]; !ok {
		t.Fatalf("openapi.json has no openapi key")
	}
}

func TestRequestIDAndObserve(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := b.do(t, http.MethodGet, "/healthz", "", "X-Request-Id: abc-123")
	if got := resp.Header.Get(HeaderRequestID); got != "abc-123" {
		t.Fatalf("X-Request-Id = %q, want the caller's", got)
	}
	r1 := b.do(t, http.MethodGet, "/healthz", "", "X-Request-Id: has space")
	r2 := b.do(t, http.MethodGet, "/healthz", "")
	id1, id2 := r1.Header.Get(HeaderRequestID), r2.Header.Get(HeaderRequestID)
	if id1 == "" || id1 == "has space" || id1 == id2 {
		t.Fatalf("generated ids %q and %q", id1, id2)
	}
	b.submit(t)
	b.do(t, http.MethodGet, "/nowhere", "")
	b.mu.Lock()
	defer b.mu.Unlock()
	want := []string{"GET /healthz 200", "GET /healthz 200", "GET /healthz 200", "POST /v1/jobs 202", "unmatched 404"}
	if strings.Join(b.observed, ",") != strings.Join(want, ",") {
		t.Fatalf("observed %q, want %q", b.observed, want)
	}
}

// panicJobs panics in Get, to exercise the recover middleware.
type panicJobs struct{ *memJobs }

func (panicJobs) Get(context.Context, string, string) (messages.JobRecord, error) {
	panic("secret internal state")
}

func TestPanicIsA500WithoutInternals(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *APIConfig) { c.Jobs = panicJobs{newMemJobs()} })
	resp := b.do(t, http.MethodGet, "/v1/jobs/x", "")
	reqID := resp.Header.Get(HeaderRequestID)
	body := readAll(t, resp)
	if resp.StatusCode != 500 || strings.Contains(body, "secret") || !strings.Contains(body, SlugInternal) || reqID == "" {
		t.Fatalf("panic answered %d %s (request id %q)", resp.StatusCode, body, reqID)
	}
}

func TestJSONMediaType(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"application/json":                    true,
		"Application/JSON":                    true,
		"application/json;charset=utf-8":      true,
		`application/json; charset="UTF-8"`:   true,
		"application/problem+json":            true,
		"application/json; charset=iso8859-1": false,
		"text/json":                           false,
		"application/jsonx":                   false,
		"application/+json":                   false,
		"":                                    false,
		"multipart/form-data":                 false,
	}
	for ct, want := range cases {
		if got := jsonMediaType(ct); got != want {
			t.Errorf("jsonMediaType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestColonRoutes checks how ServeMux treats the colon routes: "jobs:batch" is one literal
// segment, distinct from /v1/jobs and from the {id} wildcard under /v1/jobs/.
func TestColonRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := b.do(t, http.MethodPost, "/v1/jobs:batch", `{"jobs":[`+validJob+`]}`)
	var res batchResults
	decodeInto(t, resp, &res)
	if resp.StatusCode != 202 || len(res.Results) != 1 {
		t.Fatalf("POST /v1/jobs:batch: %d %+v", resp.StatusCode, res)
	}
	readProblem(t, b.do(t, http.MethodPost, "/v1/jobs:batchx", validJob), http.StatusNotFound, SlugNotFound)
	readProblem(t, b.do(t, http.MethodGet, "/v1/jobs/:batch", ""), http.StatusNotFound, SlugNotFound)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.observed[0] != "POST /v1/jobs:batch 202" {
		t.Fatalf("batch served by route %q", b.observed[0])
	}
}

func TestProblemDocument(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
	writeProblem(w, r, newProblem(http.StatusTooManyRequests, SlugRateLimited, "slow down"))
	if w.Code != 429 || w.Header().Get("Retry-After") != "5" {
		t.Fatalf("429: code %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	var doc map[string]any
	if err := json.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": ProblemTypeBase + SlugRateLimited, "title": "Too Many Requests",
		"status": float64(429), "detail": "slow down", "instance": "/v1/x"}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
}
