package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/ops"
)

// TestReplayProgressAnywhere runs two `infleet ingress` processes and a worker on kfake and
// PostgreSQL, starts a slow replay on the first and follows it through the second; a repeated
// start on the second answers the running replay, one with another filter is refused. The
// first is SIGKILLed mid-replay: the second takes the replay over once its lease runs out and
// continues it to the end, so that matched equals published and every archived job ran again
// under the replay's name.
func TestReplayProgressAnywhere(t *testing.T) {
	base, brokersEnv := kafkaPostgresFleet(t)
	// The data dir is shared: the result files and the archive of every process.
	f := newE2E(t, base+`transport: {kind: kafka, kafka: {session_timeout: 2s}}
models: [{name: m, provider: sim, latency: 5ms}]
routes: {default: m}
workers: {concurrency: 4, max_attempts: 3, shutdown_timeout: 1s}
archive: {replay_lease: 3s}
`, brokersEnv)
	checkReplayAnywhere(t, func() *child { return f.start("ingress") }, func() { f.start("worker") })
}

// TestReplayProgressAnywhereOnAWS is TestReplayProgressAnywhere on SQS, DynamoDB and S3
// (fauxqs and dynalite), each process with its own data dir: the replay lives in the DynamoDB
// job table and the archive in S3.
func TestReplayProgressAnywhereOnAWS(t *testing.T) {
	p := needAWSPeers(t)
	runsTheBinary(t)
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	q := func(n string) string { return "rpa-" + sfx + "-" + n }
	f := newAWSE2E(t, p.endpoint, fmt.Sprintf(`transport:
  kind: sqs
  sqs:
    queues: {high: %s, normal: %s, low: %s}
    dead_letter_queue: %s
    visibility_timeout: 30s
store: {kind: dynamodb, dynamodb: {table: %s, endpoint: %q}}
results: {kind: s3, s3: {bucket: %s, prefix: "results/"}}
models: [{name: m, provider: sim, latency: 5ms}]
routes: {default: m}
workers: {concurrency: 4, max_attempts: 3, shutdown_timeout: 1s}
archive: {replay_lease: 3s}
log: {level: warn}
`, q("high"), q("normal"), q("low"), q("dead"), q("jobs"), p.dynamo, q("results")))
	checkReplayAnywhere(t, func() *child { return f.start("ingress") }, func() { f.start("worker") })
}

// checkReplayAnywhere starts two ingress processes and a worker, runs jobs, and checks that a
// slow replay started on the first is followed, and finished after the first is SIGKILLed,
// through the second.
func checkReplayAnywhere(t *testing.T, startIngress func() *child, startWorker func()) {
	t.Helper()
	a, b := startIngress(), startIngress()
	startWorker()

	const n = 30
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, a.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"replayed anywhere %d"}}`, i)))
	}
	for _, id := range ids {
		a.api.waitStatus(id, messages.StatusCompleted)
	}
	a.api.eventually(15*time.Second, func() bool {
		_, _, data := a.api.do(http.MethodPost, "/v1/replays", `{"since":"1h","dry_run":true}`, nil)
		var st ops.ReplayStatus
		_ = json.Unmarshal(data, &st)
		return st.Matched == n
	})

	const start = `{"since":"1h","name":"anywhere","rate":4}`
	code, hdr, data := a.api.do(http.MethodPost, "/v1/replays", start, nil)
	if code != http.StatusAccepted || hdr.Get("Location") != "/v1/replays/anywhere" {
		t.Fatalf("start on the first process: %d %v %s", code, hdr, data)
	}
	status := func(h *apiHarness) ops.ReplayStatus {
		code, _, data := h.do(http.MethodGet, "/v1/replays/anywhere", "", nil)
		if code != http.StatusOK {
			t.Fatalf("GET /v1/replays/anywhere on %s: %d %s", h.base, code, data)
		}
		var st ops.ReplayStatus
		if err := json.Unmarshal(data, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	var onB ops.ReplayStatus
	b.api.eventually(15*time.Second, func() bool { onB = status(b.api); return onB.Published >= 3 })
	first := onB.Process
	if onB.Matched != n || onB.Done || onB.Interrupted || first == "" || onB.UpdatedAt.IsZero() {
		t.Fatalf("progress read on the second process: %+v", onB)
	}

	// A repeated start anywhere answers the running replay; another filter is refused.
	code, hdr, data = b.api.do(http.MethodPost, "/v1/replays", start, nil)
	if code != http.StatusAccepted || hdr.Get("Location") != "/v1/replays/anywhere" || !strings.Contains(string(data), `"process":"`+first+`"`) {
		t.Fatalf("repeated start on the second process: %d %v %s", code, hdr, data)
	}
	code, _, data = b.api.do(http.MethodPost, "/v1/replays", `{"since":"1h","name":"anywhere","task":"classify"}`, nil)
	if code != http.StatusConflict || !strings.Contains(string(data), `"field":"task"`) {
		t.Fatalf("start with another filter: %d %s, want 409 naming task", code, data)
	}
	code, _, data = b.api.do(http.MethodGet, "/v1/replays?limit=5", "", nil)
	if code != http.StatusOK || !strings.Contains(string(data), `"replay_name":"anywhere"`) {
		t.Fatalf("GET /v1/replays on the second process: %d %s", code, data)
	}

	b.api.eventually(15*time.Second, func() bool { onB = status(b.api); return onB.Published >= 8 })
	if onB.Done {
		t.Fatal("the replay ended before the kill; the test needs a slower rate")
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	killedAt := onB.Published

	b.api.eventually(60*time.Second, func() bool { onB = status(b.api); return onB.Done })
	if onB.Error != "" || onB.Matched != n || onB.Published != n || onB.Process == first || onB.Interrupted {
		t.Fatalf("after the takeover: %+v; want done by another process than %s with %d of %d published", onB, first, n, n)
	}
	t.Logf("killed at %d of %d published; %s continued it to the end", killedAt, n, onB.Process)
	for _, id := range ids {
		b.api.eventually(30*time.Second, func() bool {
			rec := b.api.job(id)
			return rec.ReplayName == "anywhere" && rec.Status == messages.StatusCompleted
		})
	}
}

// TestReplaySurvivesARestart stops `infleet serve` (the embedded default, SQLite) with SIGTERM
// in the middle of a slow replay: the process hands the replay back, and the process started
// again on the same data dir shows its progress at once and finishes it, each archived job
// re-published once.
func TestReplaySurvivesARestart(t *testing.T) {
	runsTheBinary(t)
	f := newE2E(t, `
models: [{name: m, provider: sim, latency: 5ms}]
routes: {default: m}
workers: {concurrency: 4, shutdown_timeout: 2s}
archive: {replay_lease: 3s}
log: {level: info}
`)
	c := f.serve()
	const n = 16
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"restart replay %d"}}`, i)))
	}
	for _, id := range ids {
		c.api.waitStatus(id, messages.StatusCompleted)
	}
	c.api.eventually(15*time.Second, func() bool {
		_, _, data := c.api.do(http.MethodPost, "/v1/replays", `{"since":"1h","dry_run":true}`, nil)
		var st ops.ReplayStatus
		_ = json.Unmarshal(data, &st)
		return st.Matched == n
	})
	if code, _, data := c.api.do(http.MethodPost, "/v1/replays", `{"since":"1h","name":"restarted","rate":4}`, nil); code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, data)
	}
	status := func(h *apiHarness) ops.ReplayStatus {
		code, _, data := h.do(http.MethodGet, "/v1/replays/restarted", "", nil)
		var st ops.ReplayStatus
		if code != http.StatusOK || json.Unmarshal(data, &st) != nil {
			t.Fatalf("GET /v1/replays/restarted: %d %s", code, data)
		}
		return st
	}
	c.api.eventually(15*time.Second, func() bool { return status(c.api).Published >= 4 })
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM\n%s", err, c.logs.String())
	}
	if !strings.Contains(c.logs.String(), "replay handed back at shutdown") {
		t.Fatalf("no hand-back logged at shutdown:\n%s", c.logs.String())
	}

	c2 := f.serve()
	before := status(c2.api)
	if before.Published < 4 || before.Done {
		t.Fatalf("after the restart = %+v; want the progress made before it", before)
	}
	var st ops.ReplayStatus
	c2.api.eventually(30*time.Second, func() bool { st = status(c2.api); return st.Done })
	if st.Matched != n || st.Published != n || st.Error != "" || st.Process == before.Process {
		t.Fatalf("finished = %+v; want %d of %d, by the new process", st, n, n)
	}
	for _, id := range ids {
		c2.api.eventually(15*time.Second, func() bool {
			rec := c2.api.job(id)
			return rec.ReplayName == "restarted" && rec.Status == messages.StatusCompleted && rec.Attempts == 1
		})
	}
}
