package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestDeadLettersRedriveAfterRecovery runs jobs against a model that is down until they fail
// and are dead-lettered, lists them with their reasons, restarts with the model up, redrives
// them through the CLI and sees every one complete; a second redrive duplicates nothing.
func TestDeadLettersRedriveAfterRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := binary(t)
	dataDir := t.TempDir()
	addr := freeAddr(t)
	down := writeConfig(t, `
models: [{name: m, provider: sim, latency: 1ms, fail_rate: 1}]
routes: {default: m}
workers: {concurrency: 8, max_attempts: 2, retry_backoff: {initial: 10ms, max: 20ms}}
log: {level: warn}
`)
	c := startChild(t, bin, dataDir, addr, down)
	const n = 6
	var ids []string
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"dead %d"}}`, i)))
	}
	for _, id := range ids {
		rec := c.api.waitStatus(id, messages.StatusFailed)
		if rec.Error == nil || rec.Attempts != 2 {
			t.Fatalf("job %s: %+v", id, rec)
		}
	}
	var dls []pipeline.DeadLetter
	c.api.eventually(10*time.Second, func() bool {
		_, _, data := c.api.do(http.MethodGet, "/v1/dead-letters?task=summarize", "", nil)
		var out struct {
			DeadLetters []pipeline.DeadLetter `json:"dead_letters"`
		}
		_ = json.Unmarshal(data, &out)
		dls = out.DeadLetters
		return len(dls) == n
	})
	for _, dl := range dls {
		if dl.Code != messages.ErrCodeModelError || dl.Attempts != 2 || dl.Reason == "" || dl.DeadAt.IsZero() {
			t.Fatalf("dead letter %+v", dl)
		}
	}

	// The model recovers: restart with a healthy one and redrive everything from the CLI.
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	up := writeConfig(t, `
models: [{name: m, provider: sim, latency: 1ms}]
routes: {default: m}
log: {level: warn}
`)
	c2 := startChild(t, bin, dataDir, addr, up)
	var out, errOut bytes.Buffer
	if rc := run([]string{"dlq", "list", "--server", c2.api.base}, &out, &errOut); rc != 0 || strings.Count(out.String(), "\n") != n {
		t.Fatalf("dlq list: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	out.Reset()
	if rc := run([]string{"dlq", "show", "--server", c2.api.base, ids[0]}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), `"dead_letter"`) {
		t.Fatalf("dlq show: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	out.Reset()
	if rc := run([]string{"dlq", "redrive", "--all", "--server", c2.api.base}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), fmt.Sprintf("redriven %d", n)) {
		t.Fatalf("dlq redrive: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	for _, id := range ids {
		rec := c2.api.waitStatus(id, messages.StatusCompleted)
		if rec.Attempts != 1 {
			t.Fatalf("job %s: %d attempts after a redrive with attempts reset", id, rec.Attempts)
		}
	}
	out.Reset()
	if rc := run([]string{"dlq", "redrive", "--all", "--server", c2.api.base}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), "matched 0") {
		t.Fatalf("second redrive: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	code, _, _ := c2.api.do(http.MethodPost, "/v1/dead-letters:redrive", `{}`, nil)
	if code != http.StatusBadRequest {
		t.Fatalf("redrive of nothing in particular: %d, want 400", code)
	}
}
