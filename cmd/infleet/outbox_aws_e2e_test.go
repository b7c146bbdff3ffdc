package main

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestOutboxEventsSurviveSIGKILLOnDynamoDB is TestOutboxEventsSurviveSIGKILL on an AWS fleet
// (SQS and DynamoDB: fauxqs and dynalite), where the outbox lives on the job items. An ingress
// takes N jobs; workers are started one after another and each is SIGKILLed as soon as its
// dispatcher is sending an event (the job's status is written, its event kept, the receiver
// holding the delivery), several times during the run. Then the receiver answers, a last
// worker finishes the run, and every job's event must arrive: at least once, under one stable
// id (header and JSON agree), none lost.
func TestOutboxEventsSurviveSIGKILLOnDynamoDB(t *testing.T) {
	p := needAWSPeers(t)
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	hooks := newHeldHooks()
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	bin := binary(t)
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	q := func(n string) string { return "e2e-outbox-" + sfx + "-" + n }
	cfgPath := writeConfig(t, fmt.Sprintf(`
transport:
  kind: sqs
  sqs:
    queues: {high: %s, normal: %s, low: %s}
    dead_letter_queue: %s
    visibility_timeout: 3s
store: {kind: dynamodb, dynamodb: {table: %s, endpoint: %q}}
models: [{name: fast, provider: sim, latency: 100ms}]
routes: {default: fast}
workers: {concurrency: 4, max_attempts: 5, shutdown_timeout: 2s}
notify:
  webhook: {url: %q, allow_private: true, max_attempts: 1}
  outbox: {lease: 2s, poll: 100ms}
log: {level: warn}
`, q("high"), q("normal"), q("low"), q("dead"), "e2e-outbox-jobs-"+sfx, p.dynamo, srv.URL))
	env := "INFLEET_AWS_ENDPOINT=" + p.endpoint
	cmd := exec.Command(bin, "init", "--config", cfgPath, "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), env)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}

	ingress := startRole(t, bin, "ingress", t.TempDir(), cfgPath, env)
	api := ingress.api
	const n, kills = 40, 4
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"outbox job %d"}}`, i)))
	}
	heldSeen := func() int {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return hooks.heldSeen
	}
	for k := range kills {
		before := heldSeen()
		w := startRole(t, bin, "worker", t.TempDir(), cfgPath, env)
		// A job's status is written and its event is being sent: kill the worker between the two.
		w.api.eventually(30*time.Second, func() bool { return heldSeen() > before })
		if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = w.cmd.Wait()
		t.Logf("kill %d: %d jobs COMPLETED, %d deliveries held so far", k+1,
			countStatus(api.statuses(), messages.StatusCompleted), heldSeen())
	}
	hooks.mu.Lock()
	if len(hooks.delivered) != 0 {
		hooks.mu.Unlock()
		t.Fatalf("events delivered before the last kill: %v; the receiver was to hold them all", hooks.delivered)
	}
	hooks.mu.Unlock()
	completedAtKills := countStatus(api.statuses(), messages.StatusCompleted)
	close(hooks.held)

	startRole(t, bin, "worker", t.TempDir(), cfgPath, env)
	api.eventually(90*time.Second, func() bool {
		return countStatus(api.statuses(), messages.StatusCompleted) == n
	})
	api.eventually(60*time.Second, func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return len(hooks.delivered) == n
	})
	// Let redeliveries of events whose deletes were cut off arrive, so they are checked too.
	time.Sleep(3 * time.Second)
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if len(hooks.mismatch) > 0 {
		t.Fatalf("event id header and JSON id disagree: %v", hooks.mismatch)
	}
	deliveries := 0
	for _, id := range ids {
		got := hooks.delivered[id]
		if len(got) != 1 {
			t.Fatalf("job %s: events %v, want one event id", id, got)
		}
		for evID, times := range got {
			deliveries += times
			if ev := hooks.events[evID]; ev.Type != messages.EventCompleted || ev.JobID != id {
				t.Fatalf("job %s: event %+v, want %s", id, ev, messages.EventCompleted)
			}
		}
	}
	if len(hooks.delivered) != n {
		t.Fatalf("events of %d jobs delivered, want %d", len(hooks.delivered), n)
	}
	t.Logf("%d jobs, %d COMPLETED by the %d killed workers; %d deliveries were cut off by the kills; "+
		"%d events delivered afterwards (%d duplicates), none lost",
		n, completedAtKills, kills, hooks.heldSeen, deliveries, deliveries-n)
}
