package main

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// e2eRetention is how long the retention test keeps finished jobs.
const e2eRetention = 4 * time.Second

const retentionConfig = `
store: {retention: 4s, retention_interval: 100ms}
models:
  - {name: fast, provider: sim, latency: 5ms}
  - {name: slow, provider: sim, latency: 30s}
routes: {default: fast, slowtask: slow}
workers: {concurrency: 4, shutdown_timeout: 1s}
log: {level: warn}
`

// TestServeDeletesExpiredJobs runs `serve` on the embedded default (SQLite and result files)
// with a short store.retention: a finished job vanishes with its result file and its
// idempotency key once it is older than the retention, while a job that finished later and a
// job still running stay.
func TestServeDeletesExpiredJobs(t *testing.T) {
	t.Parallel()
	h := startServe(t, retentionConfig)
	resultFile := func(id string) string { return filepath.Join(h.dataDir, "results", id+".json") }
	exists := func(id string) bool {
		_, err := os.Stat(resultFile(id))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return err == nil
	}
	status := func(id string) int {
		code, _, _ := h.do(http.MethodGet, "/v1/jobs/"+id, "", nil)
		return code
	}

	key := map[string]string{"Idempotency-Key": "k-old"}
	code, _, data := h.do(http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"old"}}`, key)
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, data)
	}
	old := h.submitted(data)
	h.waitStatus(old, messages.StatusCompleted)
	if !exists(old) {
		t.Fatalf("no result file %s for the completed job", resultFile(old))
	}
	running := h.submit(`{"task":"slowtask","input":{"text":"still running"}}`)
	h.waitStatus(running, messages.StatusProcessing)

	// Half a retention later, a second job finishes: it must outlive the first by that much.
	time.Sleep(e2eRetention / 2)
	newer := h.submit(`{"task":"summarize","input":{"text":"newer"}}`)
	h.waitStatus(newer, messages.StatusCompleted)

	h.eventually(3*e2eRetention, func() bool { return status(old) == http.StatusNotFound })
	if exists(old) {
		t.Errorf("the result file of the expired job is still there")
	}
	if code, _, _ := h.do(http.MethodGet, "/v1/jobs/"+old+"/result", "", nil); code != http.StatusNotFound {
		t.Errorf("GET the result of the expired job: %d, want 404", code)
	}
	if rec := h.job(newer); rec.Status != messages.StatusCompleted || !exists(newer) {
		t.Errorf("the job that finished later went with the expired one (status %s, result file there: %t)", rec.Status, exists(newer))
	}
	if rec := h.job(running); rec.Status != messages.StatusProcessing {
		t.Errorf("the running job is %s, want PROCESSING", rec.Status)
	}
	code, _, data = h.do(http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"old"}}`, key)
	if again := h.submitted(data); code != http.StatusAccepted || again == old {
		t.Errorf("the expired job's idempotency key gave %d and job %s, want a new job", code, again)
	}

	// The later job goes too once it is old enough; the running one stays.
	h.eventually(3*e2eRetention, func() bool { return status(newer) == http.StatusNotFound && !exists(newer) })
	if code := status(running); code != http.StatusOK {
		t.Errorf("GET the running job: %d, want 200", code)
	}
}
