package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/internal/disktest"
	"github.com/infleet/infleet/messages"
)

// TestServeOnAFullDisk runs `infleet serve` with its data dir on a small tmpfs and fills the
// tmpfs while jobs run: submissions get 503 with Retry-After saying the disk is full, the jobs
// in flight wait without spending attempts (never past max_attempts, never FAILED), and once
// the filler is removed the held jobs and new ones complete without a restart, leaving no
// temporary file behind.
func TestServeOnAFullDisk(t *testing.T) {
	runsTheBinary(t)
	mnt := disktest.Mount(t, "16m")
	const maxAttempts = 2
	f := newE2E(t, fmt.Sprintf(`
models: [{name: fast, provider: sim, latency: 500ms}]
routes: {default: fast}
workers: {concurrency: 4, max_attempts: %d, retry_backoff: {initial: 50ms, max: 400ms}}
log: {level: info}
`, maxAttempts))
	f.dataDir = filepath.Join(mnt, "data") // on the small tmpfs the test fills
	c := f.serve()
	// The log is read once the process has stopped writing it.
	stop := func() string {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		_ = c.cmd.Wait()
		return c.logs.String()
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve log:\n%s", tail(stop(), 80))
		}
	})
	job := func(i int) string {
		return fmt.Sprintf(`{"task":"summarize","input":{"text":"disk test %d: %s"}}`, i, strings.Repeat("lorem ipsum ", 4000))
	}

	// Jobs in flight when the disk fills: their results cannot be written.
	var held []string
	for i := range 4 {
		held = append(held, c.api.submit(job(i)))
	}
	c.api.eventually(10*time.Second, func() bool {
		return countStatus(c.api.statuses(), messages.StatusProcessing) > 0
	})
	filler := disktest.Fill(t, mnt)

	// Submissions while the disk is full: 503, saying so, with a Retry-After.
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	var hdr http.Header
	c.api.eventually(15*time.Second, func() bool {
		code, h, data := c.api.do(http.MethodPost, "/v1/jobs", job(100), nil)
		if code == http.StatusAccepted { // taken before the server saw the disk was full
			var out struct {
				JobID string `json:"job_id"`
			}
			_ = json.Unmarshal(data, &out)
			held = append(held, out.JobID)
			return false
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("submit on a full disk: %d %s", code, data)
		}
		hdr = h
		return json.Unmarshal(data, &p) == nil
	})
	if hdr.Get("Retry-After") == "" || hdr.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(p.Detail, "disk is full") || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("503 on a full disk: Retry-After %q, Content-Type %q, %+v", hdr.Get("Retry-After"), hdr.Get("Content-Type"), p)
	}
	if code, _, _ := c.api.do(http.MethodGet, "/readyz", "", nil); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a full disk: %d, want 503", code)
	}

	// Let the held jobs be delivered again and again while the disk stays full.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		for id, rec := range c.api.statuses() {
			if rec.Status == messages.StatusFailed || rec.Attempts > maxAttempts {
				t.Fatalf("job %s on a full disk: %s after %d attempts (error %+v)", id, rec.Status, rec.Attempts, rec.Error)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Space returns: everything completes without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var jobs map[string]messages.JobRecord
	c.api.eventually(60*time.Second, func() bool {
		jobs = c.api.statuses()
		for _, id := range held {
			if jobs[id].Status != messages.StatusCompleted {
				return false
			}
		}
		return true
	})
	for _, id := range held {
		if rec := jobs[id]; rec.Attempts != 1 || rec.Error != nil {
			t.Errorf("held job %s completed after %d attempts (error %+v); want 1: waiting for space must not spend attempts", id, rec.Attempts, rec.Error)
		}
	}
	var fresh string
	c.api.eventually(30*time.Second, func() bool {
		code, _, data := c.api.do(http.MethodPost, "/v1/jobs", job(200), nil)
		if code != http.StatusAccepted {
			return false
		}
		var out struct {
			JobID string `json:"job_id"`
		}
		_ = json.Unmarshal(data, &out)
		fresh = out.JobID
		return true
	})
	if rec := c.api.waitStatus(fresh, messages.StatusCompleted); rec.Attempts != 1 {
		t.Errorf("new job after recovery: %d attempts", rec.Attempts)
	}
	c.api.eventually(10*time.Second, func() bool {
		code, _, _ := c.api.do(http.MethodGet, "/readyz", "", nil)
		return code == http.StatusOK
	})
	for id := range jobs {
		if _, err := os.Stat(filepath.Join(f.dataDir, "results", id+".json")); err != nil && jobs[id].Status == messages.StatusCompleted {
			t.Errorf("result of %s: %v", id, err)
		}
	}
	err := filepath.WalkDir(filepath.Join(f.dataDir, "results"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), ".infleet-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stop(), "infrastructure failure") {
		t.Errorf("the log does not show the held jobs' infrastructure failures")
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
