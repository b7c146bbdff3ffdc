package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/webhook"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
)

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// hooks is a webhook receiver that verifies signatures.
type hooks struct {
	mu     sync.Mutex
	events []messages.Event
	bad    int
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := webhook.Verify("s3cret", r.Header.Get("Infleet-Signature"), body, time.Minute, time.Now()); err != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev messages.Event
	_ = json.Unmarshal(body, &ev)
	h.events = append(h.events, ev)
}

func (h *hooks) find(jobID string) (messages.Event, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e.JobID == jobID {
			return e, h.bad
		}
	}
	return messages.Event{}, h.bad
}

// apiHarness is a running in-process `serve` and a client for it.
type apiHarness struct {
	base    string
	dataDir string
	t       *testing.T
}

func startServe(t *testing.T, yaml string) *apiHarness {
	t.Helper()
	h, _ := startRoles(t, t.TempDir(), yaml, roles{ingress: true, workers: true})
	return h
}

// startRoles runs serve with roles r on dir's data_dir and config yaml, and returns the
// harness and a stop function that waits for serve to end (also run at cleanup).
func startRoles(t *testing.T, dir, yaml string, r roles) (*apiHarness, func()) {
	t.Helper()
	addr := freeAddr(t)
	path := filepath.Join(dir, "infleet.yaml")
	full := fmt.Sprintf("addr: %q\ndata_dir: %q\n%s", addr, filepath.Join(dir, "data"), yaml)
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, configSource{}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), r)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	h := &apiHarness{base: "http://" + addr, dataDir: filepath.Join(dir, "data"), t: t}
	h.eventually(10*time.Second, func() bool {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return h, stop
}

func (h *apiHarness) do(method, path, body string, header map[string]string) (int, http.Header, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

func (h *apiHarness) submit(body string) string {
	h.t.Helper()
	code, _, data := h.do(http.MethodPost, "/v1/jobs", body, nil)
	if code != http.StatusAccepted {
		h.t.Fatalf("submit: %d %s", code, data)
	}
	return h.submitted(data)
}

// submitted returns the job id of a POST /v1/jobs answer.
func (h *apiHarness) submitted(data []byte) string {
	var out struct {
		JobID string `json:"job_id"`
	}
	_ = json.Unmarshal(data, &out)
	return out.JobID
}

func (h *apiHarness) job(id string) messages.JobRecord {
	h.t.Helper()
	code, _, data := h.do(http.MethodGet, "/v1/jobs/"+id, "", nil)
	if code != http.StatusOK {
		h.t.Fatalf("get %s: %d %s", id, code, data)
	}
	var rec messages.JobRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		h.t.Fatal(err)
	}
	return rec
}

func (h *apiHarness) waitStatus(id string, want messages.Status) messages.JobRecord {
	h.t.Helper()
	var rec messages.JobRecord
	h.eventually(15*time.Second, func() bool {
		rec = h.job(id)
		return rec.Status == want
	})
	return rec
}

func (h *apiHarness) eventually(d time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const e2eConfig = `
models:
  - {name: fast, provider: sim, latency: 5ms}
  - {name: slow, provider: sim, latency: 30s}
routes: {default: fast, slowtask: slow}
workers: {concurrency: 8, max_attempts: 2, shutdown_timeout: 1s, retry_backoff: {initial: 10ms, max: 20ms}}
log: {level: warn}
`

func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	recv := &hooks{}
	hookSrv := httptest.NewServer(recv)
	t.Cleanup(hookSrv.Close)
	h := startServe(t, e2eConfig+fmt.Sprintf("notify: {webhook: {url: %q, secret: s3cret, allow_private: true}}\n", hookSrv.URL))

	t.Run("submit and wait", func(t *testing.T) {
		code, hdr, data := h.do(http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"Queues make model calls reliable."}}`,
			map[string]string{"Prefer": "wait=10", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
		if code != http.StatusOK {
			t.Fatalf("Prefer: wait: %d %s", code, data)
		}
		if hdr.Get("Preference-Applied") == "" {
			t.Errorf("no Preference-Applied header")
		}
		var rec messages.JobRecord
		_ = json.Unmarshal(data, &rec)
		if rec.Status != messages.StatusCompleted || rec.Attempts != 1 || rec.Usage == nil || rec.ResultURL == "" {
			t.Fatalf("record %s", data)
		}
		code, _, data = h.do(http.MethodGet, rec.ResultURL, "", nil)
		var res messages.Result
		_ = json.Unmarshal(data, &res)
		if code != http.StatusOK || res.JobID != rec.JobID || !strings.HasPrefix(res.Output.Text, "Summary") {
			t.Fatalf("result %d %s", code, data)
		}
		h.eventually(10*time.Second, func() bool { ev, _ := recv.find(rec.JobID); return ev.Type != "" })
		ev, bad := recv.find(rec.JobID)
		if ev.Type != messages.EventCompleted || ev.Status != messages.StatusCompleted || bad != 0 {
			t.Fatalf("webhook event %+v, bad signatures %d", ev, bad)
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		body := `{"task":"summarize","input":{"text":"once"}}`
		_, _, a := h.do(http.MethodPost, "/v1/jobs", body, map[string]string{"Idempotency-Key": "k-1"})
		_, _, b := h.do(http.MethodPost, "/v1/jobs", body, map[string]string{"Idempotency-Key": "k-1"})
		var ja, jb struct {
			JobID string `json:"job_id"`
		}
		_ = json.Unmarshal(a, &ja)
		_ = json.Unmarshal(b, &jb)
		if ja.JobID == "" || ja.JobID != jb.JobID {
			t.Fatalf("same key, different jobs: %s vs %s", a, b)
		}
	})

	t.Run("cancel a running job", func(t *testing.T) {
		id := h.submit(`{"task":"slowtask","input":{"text":"takes long"}}`)
		h.waitStatus(id, messages.StatusProcessing)
		code, _, data := h.do(http.MethodDelete, "/v1/jobs/"+id, "", nil)
		if code != http.StatusAccepted {
			t.Fatalf("cancel: %d %s", code, data)
		}
		h.waitStatus(id, messages.StatusCancelled)
		if code, _, _ := h.do(http.MethodDelete, "/v1/jobs/"+id, "", nil); code != http.StatusConflict {
			t.Fatalf("second cancel: %d, want 409", code)
		}
		if code, _, _ := h.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", nil); code != http.StatusNotFound {
			t.Fatalf("result of a cancelled job: %d, want 404", code)
		}
	})

	t.Run("unknown model fails with a reason", func(t *testing.T) {
		id := h.submit(`{"task":"summarize","model":"nope","input":{"text":"x"}}`)
		rec := h.waitStatus(id, messages.StatusFailed)
		if rec.Error == nil || rec.Error.Code != messages.ErrCodeNoModel {
			t.Fatalf("error %+v", rec.Error)
		}
	})

	t.Run("events stream ends at terminal status", func(t *testing.T) {
		id := h.submit(`{"task":"summarize","input":{"text":"stream me"}}`)
		resp, err := http.Get(h.base + "/v1/jobs/" + id + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("content type %q", ct)
		}
		var last messages.JobRecord
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				_ = json.Unmarshal([]byte(strings.TrimSpace(v)), &last)
			}
		}
		if last.Status != messages.StatusCompleted {
			t.Fatalf("last streamed status %q", last.Status)
		}
	})

	t.Run("batch and list", func(t *testing.T) {
		code, _, data := h.do(http.MethodPost, "/v1/jobs:batch",
			`{"jobs":[{"task":"summarize","input":{"text":"a"}},{"task":"","input":{}},{"task":"classify","input":{"text":"b"},"priority":"low"}]}`, nil)
		if code != http.StatusAccepted {
			t.Fatalf("batch: %d %s", code, data)
		}
		var out struct {
			Results []struct {
				JobID string          `json:"job_id"`
				Error json.RawMessage `json:"error"`
			} `json:"results"`
		}
		_ = json.Unmarshal(data, &out)
		if len(out.Results) != 3 || out.Results[0].JobID == "" || out.Results[1].Error == nil || out.Results[2].JobID == "" {
			t.Fatalf("batch results %s", data)
		}
		seen := map[string]bool{}
		cursor := ""
		for page := 0; page < 50; page++ {
			code, _, data := h.do(http.MethodGet, "/v1/jobs?limit=2&cursor="+cursor, "", nil)
			if code != http.StatusOK {
				t.Fatalf("list: %d %s", code, data)
			}
			var list struct {
				Jobs       []messages.JobRecord `json:"jobs"`
				NextCursor string               `json:"next_cursor"`
			}
			_ = json.Unmarshal(data, &list)
			for _, j := range list.Jobs {
				if seen[j.JobID] {
					t.Fatalf("job %s listed twice", j.JobID)
				}
				seen[j.JobID] = true
			}
			if list.NextCursor == "" {
				break
			}
			cursor = list.NextCursor
		}
		if !seen[out.Results[0].JobID] || !seen[out.Results[2].JobID] {
			t.Fatalf("batch jobs missing from the list (%d listed)", len(seen))
		}
	})

	t.Run("bad input is a problem listing every field", func(t *testing.T) {
		code, hdr, data := h.do(http.MethodPost, "/v1/jobs", `{"task":"","priority":"urgent"}`, nil)
		if code != http.StatusBadRequest || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%d %s %s", code, hdr.Get("Content-Type"), data)
		}
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		_ = json.Unmarshal(data, &p)
		if len(p.Errors) < 3 {
			t.Fatalf("want every problem listed, got %s", data)
		}
		if code, _, _ := h.do(http.MethodPost, "/v1/jobs", strings.Repeat("x", 2<<20), nil); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("2 MiB body: %d, want 413", code)
		}
		req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/jobs", bytes.NewReader([]byte("task=x")))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("form body: %d, want 415", resp.StatusCode)
		}
	})

	t.Run("operations endpoints", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
			if code, _, data := h.do(http.MethodGet, p, "", nil); code != http.StatusOK {
				t.Fatalf("%s: %d %s", p, code, data)
			}
		}
		_, _, data := h.do(http.MethodGet, "/metrics", "", nil)
		for _, name := range []string{"infleet_jobs_accepted_total", "infleet_jobs_finished_total", "infleet_stage_duration_seconds",
			"infleet_model_call_duration_seconds", "infleet_model_tokens_total", "infleet_http_requests_total"} {
			if !bytes.Contains(data, []byte(name)) {
				t.Errorf("metric %s missing", name)
			}
		}
	})
}
