package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/ops"
)

// TestDeadLettersRedriveAfterRecovery runs the dead-letter round trip on the embedded default.
func TestDeadLettersRedriveAfterRecovery(t *testing.T) {
	runsTheBinary(t)
	checkDeadLettersRoundTrip(t, "", nil)
}

// checkDeadLettersRoundTrip runs jobs on the fleet config (transport and store; "" for the
// embedded default) against a model that is down until they fail and are dead-lettered, lists
// them with their reasons and attempt history, restarts with the model up, redrives them
// through the CLI and sees every one complete; afterwards nothing is left to list and a second
// redrive duplicates nothing. stopped, when set, checks the first process's logs.
func checkDeadLettersRoundTrip(t *testing.T, fleet string, stopped func(logs string)) {
	t.Helper()
	f := newE2E(t, fleet+`
models: [{name: m, provider: sim, latency: 1ms, fail_rate: 1}]
routes: {default: m}
workers: {concurrency: 8, max_attempts: 2, retry_backoff: {initial: 100ms, max: 200ms}}
log: {level: warn}
`)
	c := f.serve()
	const n = 5
	var ids []string
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"dead %d"}}`, i)))
	}
	for _, id := range ids {
		rec := c.api.waitStatus(id, messages.StatusFailed)
		if rec.Error == nil || rec.Attempts != 2 || len(rec.Error.History) != 2 {
			t.Fatalf("job %s: %+v", id, rec)
		}
	}
	var dls []ops.DeadLetter
	c.api.eventually(20*time.Second, func() bool {
		_, _, data := c.api.do(http.MethodGet, "/v1/dead-letters?task=summarize", "", nil)
		var got struct {
			DeadLetters []ops.DeadLetter `json:"dead_letters"`
		}
		_ = json.Unmarshal(data, &got)
		dls = got.DeadLetters
		return len(dls) == n
	})
	for _, dl := range dls {
		if dl.Code != messages.ErrCodeModelError || dl.Attempts != 2 || dl.Reason == "" || dl.DeadAt.IsZero() {
			t.Fatalf("dead letter %+v", dl)
		}
	}

	// The model recovers: restart with a healthy one and redrive everything from the CLI.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	if stopped != nil {
		stopped(c.logs.String())
	}
	f.cfgPath = writeConfig(t, fleet+`
models: [{name: m, provider: sim, latency: 1ms}]
routes: {default: m}
log: {level: warn}
`)
	c2 := f.serve()
	// cli runs `infleet dlq SUB ARGS...` against c2 and wants want in its output.
	cli := func(want string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		full := append([]string{args[0], args[1], "--server", c2.api.base}, args[2:]...) // flags before arguments
		if rc := run(full, &out, &errOut); rc != 0 || !strings.Contains(out.String(), want) {
			t.Fatalf("infleet %s: rc %d, want %q in\n%s%s", strings.Join(args, " "), rc, want, out.String(), errOut.String())
		}
		return out.String()
	}
	if out := cli("", "dlq", "list"); strings.Count(out, "\n") != n {
		t.Fatalf("dlq list: want %d lines\n%s", n, out)
	}
	cli(`"history"`, "dlq", "show", ids[0])
	cli(fmt.Sprintf("redriven %d", n), "dlq", "redrive", "--all")
	for _, id := range ids {
		if rec := c2.api.waitStatus(id, messages.StatusCompleted); rec.Attempts != 1 {
			t.Fatalf("job %s: %d attempts after a redrive with attempts reset", id, rec.Attempts)
		}
	}
	if out := cli("", "dlq", "list"); out != "" {
		t.Fatalf("dlq list after the redrive:\n%s", out)
	}
	cli("matched 0", "dlq", "redrive", "--all")
	if code, _, _ := c2.api.do(http.MethodPost, "/v1/dead-letters:redrive", `{}`, nil); code != http.StatusBadRequest {
		t.Fatalf("redrive of nothing in particular: %d, want 400", code)
	}
}
