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
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
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

func TestNewAPIRequiresJobs(t *testing.T) {
	t.Parallel()
	if _, err := NewAPI(APIConfig{}); err == nil {
		t.Fatal("NewAPI without Jobs: no error")
	}
}

// TestErrorStatuses checks every error answer of the API: status, problem type and the fields
// its errors list names.
func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	big := `{"task":"summarize","input":{"text":"` + strings.Repeat("x", testMaxBody) + `"}}`
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		slug                     string
		fields                   []string // fields the errors must name, in order
		detail                   string   // a substring of detail
	}{
		{name: "not json content type", method: "POST", path: "/v1/jobs", body: validJob,
			headers: []string{"Content-Type: text/plain"}, status: 415, slug: SlugUnsupportedMediaType, detail: "text/plain"},
		{name: "json with another charset", method: "POST", path: "/v1/jobs", body: validJob,
			headers: []string{"Content-Type: application/json; charset=latin1"}, status: 415, slug: SlugUnsupportedMediaType},
		{name: "body too large", method: "POST", path: "/v1/jobs", body: big, status: 413, slug: SlugBodyTooLarge, detail: "4096"},
		{name: "syntax error", method: "POST", path: "/v1/jobs", body: "{\n \"task\": x}", status: 400, slug: SlugInvalidJSON,
			detail: "line 2, column 10"},
		{name: "truncated", method: "POST", path: "/v1/jobs", body: `{"task":`, status: 400, slug: SlugInvalidJSON, detail: "ends early"},
		{name: "two values", method: "POST", path: "/v1/jobs", body: validJob + ` {}`, status: 400, slug: SlugInvalidJSON, detail: "more than one"},
		{name: "empty body", method: "POST", path: "/v1/jobs", body: "  ", status: 400, slug: SlugInvalidBody, detail: "empty"},
		{name: "every schema problem listed", method: "POST", path: "/v1/jobs",
			body:   `{"input":{"text":"x"},"priority":"urgent","params":{"max_tokens":0},"extra":1}`,
			status: 400, slug: SlugInvalidBody, fields: []string{"extra", "params.max_tokens", "priority", "task"}},
		{name: "job_id set by client", method: "POST", path: "/v1/jobs",
			body: `{"job_id":"mine","task":"summarize","input":{"text":"x"}}`, status: 400, slug: SlugInvalidBody,
			fields: []string{"job_id"}, detail: ""},
		{name: "replay_name set by client", method: "POST", path: "/v1/jobs",
			body: `{"replay_name":"r1","task":"summarize","input":{"text":"x"}}`, status: 400, slug: SlugInvalidBody,
			fields: []string{"replay_name"}},
		{name: "job_id and replay_name both listed", method: "POST", path: "/v1/jobs",
			body: `{"job_id":"mine","replay_name":"r1","task":"summarize","input":{"text":"x"}}`, status: 400, slug: SlugInvalidBody,
			fields: []string{"job_id", "replay_name"}},
		{name: "idempotency key header and body differ", method: "POST", path: "/v1/jobs",
			body:    `{"task":"summarize","input":{"text":"x"},"idempotency_key":"a"}`,
			headers: []string{"Idempotency-Key: b"}, status: 400, slug: SlugInvalidBody, fields: []string{"idempotency_key"}},
		{name: "missing job", method: "GET", path: "/v1/jobs/nope", status: 404, slug: SlugNotFound, detail: `"nope"`},
		{name: "missing job result", method: "GET", path: "/v1/jobs/nope/result", status: 404, slug: SlugNotFound},
		{name: "missing job events", method: "GET", path: "/v1/jobs/nope/events", status: 404, slug: SlugNotFound},
		{name: "cancel missing job", method: "DELETE", path: "/v1/jobs/nope", status: 404, slug: SlugNotFound},
		{name: "list with bad status and limit", method: "GET", path: "/v1/jobs?status=DONE&limit=501", status: 400,
			slug: SlugInvalidQuery, fields: []string{"status", "limit"}},
		{name: "list with a bad cursor", method: "GET", path: "/v1/jobs?cursor=garbage", status: 400, slug: SlugInvalidQuery,
			fields: []string{"cursor"}},
		{name: "list with zero limit", method: "GET", path: "/v1/jobs?limit=0", status: 400, slug: SlugInvalidQuery, fields: []string{"limit"}},
		{name: "unknown route", method: "GET", path: "/v2/things", status: 404, slug: SlugNotFound},
		{name: "wrong method on jobs", method: "PUT", path: "/v1/jobs", status: 405, slug: SlugMethodNotAllowed, detail: "GET, HEAD, POST"},
		{name: "wrong method on batch", method: "GET", path: "/v1/jobs:batch", status: 405, slug: SlugMethodNotAllowed, detail: "POST"},
		{name: "wrong method on a job", method: "POST", path: "/v1/jobs/abc", status: 405, slug: SlugMethodNotAllowed},
		{name: "no metrics handler", method: "GET", path: "/metrics", status: 404, slug: SlugNotFound},
		{name: "batch not an object", method: "POST", path: "/v1/jobs:batch", body: `[1]`, status: 400, slug: SlugInvalidBody},
		{name: "batch empty", method: "POST", path: "/v1/jobs:batch", body: `{"jobs":[]}`, status: 400, slug: SlugInvalidBody, fields: []string{"jobs"}},
		{name: "batch with unknown key", method: "POST", path: "/v1/jobs:batch", body: `{"jobs":[` + validJob + `],"x":1}`,
			status: 400, slug: SlugInvalidBody, fields: []string{"x"}},
		{name: "batch all invalid", method: "POST", path: "/v1/jobs:batch", body: `{"jobs":[{"task":"a"},{"input":{"text":"x"}}]}`,
			status: 400, slug: SlugInvalidBody, fields: []string{"jobs[0].input", "jobs[1].task"}},
		{name: "batch not json", method: "POST", path: "/v1/jobs:batch", body: validJob,
			headers: []string{"Content-Type: application/xml"}, status: 415, slug: SlugUnsupportedMediaType},
	}
	b := setup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := b.do(t, tc.method, tc.path, tc.body, tc.headers...)
			p := readProblem(t, resp, tc.status, tc.slug)
			if tc.fields != nil && strings.Join(fields(p), ",") != strings.Join(tc.fields, ",") {
				t.Errorf("errors name %q, want %q (%+v)", fields(p), tc.fields, p.Errors)
			}
			for _, e := range p.Errors {
				if e.Message == "" {
					t.Errorf("field %q has no message", e.Field)
				}
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", p.Detail, tc.detail)
			}
			if tc.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestBodyTooLargeWithoutContentLength(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := io.MultiReader(strings.NewReader(`{"task":"t","input":{"text":"`), strings.NewReader(strings.Repeat("x", 2*testMaxBody)))
	req, _ := http.NewRequest(http.MethodPost, b.server.URL+"/v1/jobs", io.NopCloser(body)) // unknown length: chunked
	req.Header.Set("Content-Type", contentTypeJS)
	resp, err := b.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	readProblem(t, resp, http.StatusRequestEntityTooLarge, SlugBodyTooLarge)
}

func TestPostJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, ct := range []string{"application/json", "application/json; charset=UTF-8", "application/merge+json"} {
		resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "Content-Type: "+ct)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("Content-Type %s: status %d: %s", ct, resp.StatusCode, readAll(t, resp))
		}
		var acc accepted
		decodeInto(t, resp, &acc)
		if acc.JobID == "" || acc.Status != messages.StatusQueued || acc.StatusURL != "/v1/jobs/"+acc.JobID {
			t.Fatalf("body = %+v", acc)
		}
		if loc := resp.Header.Get("Location"); loc != acc.StatusURL {
			t.Errorf("Location = %q, want %q", loc, acc.StatusURL)
		}
		if resp.Header.Get(HeaderIdempotentReplayed) != "" {
			t.Error("a new job is marked as replayed")
		}
		rec, err := b.jobs.Get(context.Background(), acc.JobID, "")
		if err != nil || rec.Task != "summarize" || rec.Priority != messages.PriorityHigh {
			t.Fatalf("stored %+v, %v", rec, err)
		}
	}
}

func TestPostJobTraceparent(t *testing.T) {
	t.Parallel()
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b := setup(t)
	b.submit(t, "Traceparent: "+good, tenantHeader+": acme")
	b.jobs.mu.Lock()
	opt := b.jobs.lastOpt
	b.jobs.mu.Unlock()
	if opt.Traceparent != good || opt.Tenant != "acme" {
		t.Fatalf("SubmitOptions = %+v", opt)
	}
	b.submit(t, "Traceparent: 00-nothex")
	b.jobs.mu.Lock()
	opt = b.jobs.lastOpt
	b.jobs.mu.Unlock()
	if opt.Traceparent != "" {
		t.Fatalf("malformed traceparent passed on: %q", opt.Traceparent)
	}
}

func TestTraceparentFormat(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more": false,
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      false,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":      false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":      false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":      false,
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":      false,
		"": false,
	}
	for h, want := range cases {
		if got := traceparent(h) != ""; got != want {
			t.Errorf("traceparent(%q) valid = %v, want %v", h, got, want)
		}
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.submit(t, "Idempotency-Key: k1", tenantHeader+": acme")
	resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "Idempotency-Key: k1", tenantHeader+": acme")
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderIdempotentReplayed) != "true" {
		t.Fatalf("replay: status %d, Idempotent-Replayed %q", resp.StatusCode, resp.Header.Get(HeaderIdempotentReplayed))
	}
	var acc accepted
	decodeInto(t, resp, &acc)
	if acc.JobID != first {
		t.Fatalf("replay returned job %s, want %s", acc.JobID, first)
	}
	// The key in the body is the same key.
	resp = b.do(t, http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"x"},"idempotency_key":"k1"}`, tenantHeader+": acme")
	decodeInto(t, resp, &acc)
	if acc.JobID != first {
		t.Fatalf("body key returned job %s, want %s", acc.JobID, first)
	}
	// Another tenant's key space is its own.
	if other := b.submit(t, "Idempotency-Key: k1", tenantHeader+": globex"); other == first {
		t.Fatal("another tenant got the same job for the same key")
	}
	// An ended job is replayed with its current status.
	b.jobs.set(first, messages.StatusFailed)
	resp = b.do(t, http.MethodPost, "/v1/jobs", validJob, "Idempotency-Key: k1", tenantHeader+": acme")
	decodeInto(t, resp, &acc)
	if acc.Status != messages.StatusFailed {
		t.Fatalf("replayed status %s, want FAILED", acc.Status)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.submit(t, tenantHeader+": acme")
	b.jobs.complete(id, "done")
	for _, path := range []string{"/v1/jobs/" + id, "/v1/jobs/" + id + "/result", "/v1/jobs/" + id + "/events"} {
		readProblem(t, b.do(t, http.MethodGet, path, "", tenantHeader+": globex"), http.StatusNotFound, SlugNotFound)
		if resp := b.do(t, http.MethodGet, path, "", tenantHeader+": acme"); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s as owner: %d", path, resp.StatusCode)
		}
	}
	readProblem(t, b.do(t, http.MethodDelete, "/v1/jobs/"+id, "", tenantHeader+": globex"), http.StatusNotFound, SlugNotFound)
	var list jobList
	decodeInto(t, b.do(t, http.MethodGet, "/v1/jobs", "", tenantHeader+": globex"), &list)
	if len(list.Jobs) != 0 {
		t.Fatalf("globex lists %d jobs of acme", len(list.Jobs))
	}
}

func TestGetJobAndResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.submit(t)

	var rec map[string]any
	decodeInto(t, b.do(t, http.MethodGet, "/v1/jobs/"+id, ""), &rec)
	for _, k := range []string{"job_id", "status", "task", "priority", "attempts", "created_at", "updated_at"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("record has no %q: %v", k, rec)
		}
	}
	for _, k := range []string{"tenant", "Tenant", "spec", "Spec", "idempotency_key"} {
		if _, ok := rec[k]; ok {
			t.Errorf("record shows internal field %q", k)
		}
	}

	p := readProblem(t, b.do(t, http.MethodGet, "/v1/jobs/"+id+"/result", ""), http.StatusNotFound, SlugNotFound)
	if !strings.Contains(p.Detail, "QUEUED") {
		t.Errorf("detail %q does not say the job is QUEUED", p.Detail)
	}
	b.jobs.complete(id, "the summary")
	resp := b.do(t, http.MethodGet, "/v1/jobs/"+id+"/result", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != contentTypeJS {
		t.Fatalf("result: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var res messages.Result
	decodeInto(t, resp, &res)
	if res.JobID != id || res.Output.Text != "the summary" {
		t.Fatalf("result = %+v", res)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.submit(t)
	resp := b.do(t, http.MethodDelete, "/v1/jobs/"+id, "")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", resp.StatusCode, readAll(t, resp))
	}
	var rec messages.JobRecord
	decodeInto(t, resp, &rec)
	if rec.Status != messages.StatusCancelled || rec.JobID != id {
		t.Fatalf("cancel answered %+v", rec)
	}
	p := readProblem(t, b.do(t, http.MethodDelete, "/v1/jobs/"+id, ""), http.StatusConflict, SlugConflict)
	if !strings.Contains(p.Detail, "CANCELLED") {
		t.Errorf("409 detail %q does not name the status", p.Detail)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for range 5 {
		ids = append(ids, b.submit(t))
	}
	b.jobs.set(ids[0], messages.StatusFailed)

	var page jobList
	decodeInto(t, b.do(t, http.MethodGet, "/v1/jobs?limit=3", ""), &page)
	if len(page.Jobs) != 3 || page.Jobs[0].JobID != ids[4] || page.NextCursor == "" {
		t.Fatalf("first page: %d jobs, first %s, cursor %q", len(page.Jobs), page.Jobs[0].JobID, page.NextCursor)
	}
	var next jobList
	decodeInto(t, b.do(t, http.MethodGet, "/v1/jobs?limit=3&cursor="+page.NextCursor, ""), &next)
	if len(next.Jobs) != 2 || next.Jobs[1].JobID != ids[0] || next.NextCursor != "" {
		t.Fatalf("second page: %+v", next)
	}
	var failed jobList
	decodeInto(t, b.do(t, http.MethodGet, "/v1/jobs?status=FAILED&task=summarize", ""), &failed)
	if len(failed.Jobs) != 1 || failed.Jobs[0].JobID != ids[0] {
		t.Fatalf("FAILED jobs: %+v", failed.Jobs)
	}
	resp := b.do(t, http.MethodGet, "/v1/jobs?task=none", "")
	if body := readAll(t, resp); !strings.Contains(body, `"jobs":[]`) {
		t.Fatalf("empty list body %s, want an empty array", body)
	}
}

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

func TestPreferWaitParsing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		header []string
		want   time.Duration
		ok     bool
	}{
		{[]string{"wait=5"}, 5 * time.Second, true},
		{[]string{"respond-async, wait=3"}, 3 * time.Second, true},
		{[]string{"Wait = 2 ; x=y"}, 2 * time.Second, true},
		{[]string{`wait="4"`}, 4 * time.Second, true},
		{[]string{"return=minimal", "wait=7"}, 7 * time.Second, true},
		{[]string{"wait=600"}, 60 * time.Second, true},
		{[]string{"wait=0"}, 0, false},
		{[]string{"wait=-1"}, 0, false},
		{[]string{"wait=soon"}, 0, false},
		{[]string{"wait=99999999999999999999"}, 0, false},
		{nil, 0, false},
	}
	for _, tc := range cases {
		got, ok := preferWait(tc.header, DefaultMaxWait)
		if got != tc.want || ok != tc.ok {
			t.Errorf("preferWait(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPreferWait(t *testing.T) {
	t.Parallel()
	t.Run("job completes within the wait", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.jobs.afterSubmit = func(id string) {
			b.jobs.set(id, messages.StatusProcessing)
			b.jobs.complete(id, "quick")
		}
		resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "Prefer: wait=10")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
		}
		if got := resp.Header.Get(HeaderPreferenceApplied); got != "wait=10" {
			t.Errorf("Preference-Applied = %q", got)
		}
		var rec messages.JobRecord
		decodeInto(t, resp, &rec)
		if rec.Status != messages.StatusCompleted || rec.ResultURL == "" {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("job does not complete within the capped wait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(c *APIConfig) { c.MaxWait = time.Second })
		resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "Prefer: wait=30")
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get(HeaderPreferenceApplied) != "" {
			t.Fatalf("status %d, Preference-Applied %q", resp.StatusCode, resp.Header.Get(HeaderPreferenceApplied))
		}
		var acc accepted
		decodeInto(t, resp, &acc)
		if acc.Status != messages.StatusQueued {
			t.Fatalf("body %+v", acc)
		}
	})
}

// A batch item carrying replay_name is refused with a problem naming the field; the other
// items are queued.
func TestBatchRefusesReplayName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"jobs":[` + validJob + `,{"task":"summarize","input":{"text":"y"},"replay_name":"replay-1"}]}`
	resp := b.do(t, http.MethodPost, "/v1/jobs:batch", body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	var res batchResults
	decodeInto(t, resp, &res)
	if len(res.Results) != 2 || res.Results[0].Error != nil || res.Results[1].Error == nil {
		t.Fatalf("results %+v, want the first queued and the second refused", res.Results)
	}
	if got := fields(*res.Results[1].Error); strings.Join(got, ",") != "jobs[1].replay_name" || res.Results[1].Error.Status != 400 {
		t.Errorf("item 1: status %d, errors name %q", res.Results[1].Error.Status, got)
	}
	// A batch of nothing else is a 400 problem listing it.
	resp = b.do(t, http.MethodPost, "/v1/jobs:batch", `{"jobs":[{"task":"t","input":{"text":"y"},"replay_name":"r"}]}`)
	if p := readProblem(t, resp, http.StatusBadRequest, SlugInvalidBody); strings.Join(fields(p), ",") != "jobs[0].replay_name" {
		t.Errorf("problem %+v, want one naming jobs[0].replay_name", p)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"jobs":[` + validJob + `,{"task":"","input":{}},` + validJob + `,{"job_id":"x","task":"t","input":{"text":"y"}}]}`
	resp := b.do(t, http.MethodPost, "/v1/jobs:batch", body, "Idempotency-Key: batch-1")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	var res batchResults
	decodeInto(t, resp, &res)
	if len(res.Results) != 4 {
		t.Fatalf("%d results, want 4", len(res.Results))
	}
	for i, r := range res.Results {
		if r.Index != i {
			t.Errorf("result %d has index %d", i, r.Index)
		}
		valid := i == 0 || i == 2
		if valid && (r.Error != nil || r.JobID == "" || r.Status != messages.StatusQueued || r.StatusURL != "/v1/jobs/"+r.JobID) {
			t.Errorf("item %d: %+v", i, r)
		}
		if !valid && (r.Error == nil || r.JobID != "" || r.Error.Status != 400 || len(r.Error.Errors) == 0) {
			t.Errorf("item %d: %+v", i, r)
		}
	}
	if got := fields(*res.Results[3].Error); strings.Join(got, ",") != "jobs[3].job_id" {
		t.Errorf("item 3 errors name %q", got)
	}
	if res.Results[0].JobID == res.Results[2].JobID {
		t.Fatal("two items got one job")
	}
	// Retrying the batch with the same key returns the same jobs.
	var again batchResults
	decodeInto(t, b.do(t, http.MethodPost, "/v1/jobs:batch", body, "Idempotency-Key: batch-1"), &again)
	for _, i := range []int{0, 2} {
		if again.Results[i].JobID != res.Results[i].JobID || !again.Results[i].Replayed {
			t.Errorf("retried item %d: %+v, first %+v", i, again.Results[i], res.Results[i])
		}
	}
}

func TestBatchTooMany(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *APIConfig) { c.MaxBodyBytes = 1 << 20 })
	body := `{"jobs":[` + strings.TrimSuffix(strings.Repeat(validJob+",", maxBatchJobs+1), ",") + `]}`
	p := readProblem(t, b.do(t, http.MethodPost, "/v1/jobs:batch", body), http.StatusBadRequest, SlugInvalidBody)
	if len(p.Errors) != 1 || p.Errors[0].Field != "jobs" {
		t.Fatalf("errors %+v", p.Errors)
	}
	body = `{"jobs":[` + strings.TrimSuffix(strings.Repeat(validJob+",", maxBatchJobs), ",") + `]}`
	var res batchResults
	decodeInto(t, b.do(t, http.MethodPost, "/v1/jobs:batch", body), &res)
	if len(res.Results) != maxBatchJobs {
		t.Fatalf("%d results for a full batch", len(res.Results))
	}
	for i, r := range res.Results {
		if r.Index != i || r.Error != nil {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
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
