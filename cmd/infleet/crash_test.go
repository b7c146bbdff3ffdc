package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary builds the infleet binary once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "infleet-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "infleet")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// child is an `infleet serve` process on a data dir that outlives it.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	api  *apiHarness
	logs *strings.Builder
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// statuses lists every job and counts them by status.
func (h *apiHarness) statuses() map[string]messages.JobRecord {
	h.t.Helper()
	jobs := map[string]messages.JobRecord{}
	cursor := ""
	for {
		code, _, data := h.do(http.MethodGet, "/v1/jobs?limit=500&cursor="+cursor, "", nil)
		if code != http.StatusOK {
			h.t.Fatalf("list: %d %s", code, data)
		}
		var page struct {
			Jobs       []messages.JobRecord `json:"jobs"`
			NextCursor string               `json:"next_cursor"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			h.t.Fatal(err)
		}
		for _, j := range page.Jobs {
			jobs[j.JobID] = j
		}
		if page.NextCursor == "" {
			return jobs
		}
		cursor = page.NextCursor
	}
}

func countStatus(jobs map[string]messages.JobRecord, s messages.Status) int {
	n := 0
	for _, j := range jobs {
		if j.Status == s {
			n++
		}
	}
	return n
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "infleet.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCrashRecovery SIGKILLs a serve process with jobs queued and running, restarts it on the
// same data dir, and checks that every accepted job completes with exactly one result.
func TestCrashRecovery(t *testing.T) {
	runsTheBinary(t)
	f := newE2E(t, `
models: [{name: fast, provider: sim, latency: 40ms}]
routes: {default: fast}
workers: {concurrency: 16, max_attempts: 5}
log: {level: warn}
`)
	c := f.serve()
	const n = 400
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"crash test job %d"}}`, i)))
	}
	c.api.eventually(30*time.Second, func() bool {
		return countStatus(c.api.statuses(), messages.StatusCompleted) >= 50
	})
	before := c.api.statuses()
	if countStatus(before, messages.StatusCompleted) == n {
		t.Fatal("every job finished before the crash; the test needs slower jobs")
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()

	c2 := f.serve()
	var after map[string]messages.JobRecord
	c2.api.eventually(60*time.Second, func() bool {
		after = c2.api.statuses()
		return countStatus(after, messages.StatusCompleted) == n
	})
	for _, id := range ids {
		rec, ok := after[id]
		if !ok || rec.Status != messages.StatusCompleted {
			t.Fatalf("job %s: %+v", id, rec)
		}
	}
	checkResultFiles(t, f.dataDir, ids)
	// The restart knew the worker before it died, and claimed every job before running it.
	if logs := c2.logString(); !strings.Contains(logs, "did not stop cleanly") {
		t.Errorf("the restarted serve did not notice the unclean stop:\n%s", logs)
	}
}

// checkResultFiles fails t unless dataDir/results holds, for each of ids, one file with that
// job's non-empty result, and no other .json file. Other files (the temporary file of a write
// cut off by SIGKILL) do not count.
func checkResultFiles(t *testing.T, dataDir string, ids []string) {
	t.Helper()
	for _, id := range ids {
		data, err := os.ReadFile(filepath.Join(dataDir, "results", id+".json"))
		if err != nil {
			t.Fatalf("result of %s: %v", id, err)
		}
		var res messages.Result
		if err := json.Unmarshal(data, &res); err != nil || res.JobID != id || res.Output.Text == "" {
			t.Fatalf("result of %s: %s", id, data)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "results"))
	if err != nil {
		t.Fatal(err)
	}
	results := 0
	for _, e := range entries {
		// A write cut off by SIGKILL may leave a temporary file; only .json files are results.
		if strings.HasSuffix(e.Name(), ".json") {
			results++
		}
	}
	if results != len(ids) {
		t.Fatalf("%d result files for %d jobs", results, len(ids))
	}
}

// TestSIGTERMDrains stops a serve process with jobs running and queued: running jobs finish
// within the shutdown bound, queued ones stay queued without spending an attempt, and a
// restart completes them all.
func TestSIGTERMDrains(t *testing.T) {
	runsTheBinary(t)
	f := newE2E(t, `
models: [{name: fast, provider: sim, latency: 1s}]
routes: {default: fast}
workers: {concurrency: 4, shutdown_timeout: 20s}
log: {level: warn}
`)
	c := f.serve()
	const n = 12
	for i := range n {
		c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"drain job %d"}}`, i))
	}
	var running map[string]messages.JobRecord
	c.api.eventually(10*time.Second, func() bool {
		running = c.api.statuses()
		return countStatus(running, messages.StatusProcessing) == 4
	})
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM\n%s", err, c.logs.String())
		}
	case <-time.After(25 * time.Second):
		t.Fatal("serve did not exit within the shutdown bound")
	}

	c2 := f.serve()
	mid := c2.api.statuses()
	for id, rec := range running {
		if rec.Status == messages.StatusProcessing && mid[id].Status != messages.StatusCompleted {
			t.Errorf("job %s was running at SIGTERM but is %s after it; want COMPLETED", id, mid[id].Status)
		}
	}
	var after map[string]messages.JobRecord
	c2.api.eventually(30*time.Second, func() bool {
		after = c2.api.statuses()
		return countStatus(after, messages.StatusCompleted) == n
	})
	for id, rec := range after {
		if rec.Attempts != 1 {
			t.Errorf("job %s took %d attempts; a drain must not spend one", id, rec.Attempts)
		}
	}
}

// TestSIGTERMHandsBackUnfinishedJobs gives running jobs less time than they need: they are
// cancelled and handed back without spending an attempt, and complete after a restart.
func TestSIGTERMHandsBackUnfinishedJobs(t *testing.T) {
	runsTheBinary(t)
	f := newE2E(t, `
models: [{name: m, provider: sim, latency: 1m}]
routes: {default: m}
workers: {concurrency: 8, shutdown_timeout: 200ms}
log: {level: info}
`)
	c := f.serve()
	var ids []string
	for i := range 8 {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"job %d"}}`, i)))
	}
	for _, id := range ids {
		c.api.waitStatus(id, messages.StatusProcessing)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, c.logs.String())
	}
	// Handing jobs back is what shutdown is meant to do: one summary line at info, no errors.
	var summaries int
	for line := range strings.Lines(c.logs.String()) {
		if strings.Contains(line, `"level":"error"`) {
			t.Errorf("error logged at shutdown: %s", line)
		}
		if strings.Contains(line, `"jobs_handed_back":8`) && strings.Contains(line, `"level":"info"`) {
			summaries++
		}
	}
	if summaries != 1 {
		t.Errorf("%d summary lines of the hand-back, want 1 saying 8 jobs; logs:\n%s", summaries, c.logs.String())
	}
	// The restart reads a config with fast jobs, on the same data dir and address.
	f.cfgPath = writeConfig(t, `
models: [{name: m, provider: sim, latency: 1ms}]
routes: {default: m}
log: {level: warn}
`)
	c2 := f.serve()
	for _, id := range ids {
		rec := c2.api.waitStatus(id, messages.StatusCompleted)
		if rec.Attempts != 1 {
			t.Errorf("job %s: %d attempts after a hand-back; want 1", id, rec.Attempts)
		}
	}
}
