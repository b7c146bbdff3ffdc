package handlers

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
)

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
		{name: "empty replay_name set by client", method: "POST", path: "/v1/jobs",
			body: `{"replay_name":"","task":"summarize","input":{"text":"x"}}`, status: 400, slug: SlugInvalidBody,
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
