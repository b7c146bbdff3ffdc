package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestArchiveKeepsEveryJobOfAKilledWorker SIGKILLs a serve process while it acknowledges jobs,
// restarts it on the same data dir, and checks that the archive holds every accepted job: a
// replay dry run counts them all, each once. With the archive written in the background
// (archive.write: background) the jobs acknowledged in the last second before the kill are
// missing.
func TestArchiveKeepsEveryJobOfAKilledWorker(t *testing.T) {
	runsTheBinary(t)
	f := newE2E(t, `
models: [{name: fast, provider: sim, latency: 20ms}]
routes: {default: fast}
workers: {concurrency: 32, max_attempts: 5}
log: {level: warn}
`)
	c := f.serve()
	const n = 600
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"archive test job %d"}}`, i)))
	}
	// Kill it while it acknowledges jobs: some have just been acked, their archive written
	// moments ago; others are running or queued.
	c.api.eventually(30*time.Second, func() bool {
		return countStatus(c.api.statuses(), messages.StatusCompleted) >= n/4
	})
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	c2 := f.serve()
	c2.api.eventually(60*time.Second, func() bool {
		return countStatus(c2.api.statuses(), messages.StatusCompleted) == n
	})
	code, _, data := c2.api.do(http.MethodPost, "/v1/replays", `{"since":"1h","dry_run":true}`, nil)
	var st struct{ Matched int }
	if err := json.Unmarshal(data, &st); err != nil || code != http.StatusOK {
		t.Fatalf("dry run: %d %s", code, data)
	}
	if st.Matched != n {
		t.Fatalf("a replay dry run after the kill counts %d archived jobs of the %d accepted", st.Matched, n)
	}
}
