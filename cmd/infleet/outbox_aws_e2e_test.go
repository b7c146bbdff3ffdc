package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestOutboxEventsSurviveSIGKILLOnDynamoDB is TestOutboxEventsSurviveSIGKILL on an AWS fleet
// (SQS and DynamoDB: fauxqs and dynalite), where the outbox lives on the job items. An ingress
// takes N jobs; workers are started one after another and each is SIGKILLed as soon as its
// dispatcher is sending an event (the job's status is written, its event kept, the receiver
// holding the delivery), several times during the run. Then the receiver answers; one more
// worker is SIGKILLed after the receiver has taken an event and before it answers (so that
// event must come again: a duplicate); a last worker finishes the run, and every job's event
// must arrive: at least once, under one stable id (header and JSON agree), none lost.
func TestOutboxEventsSurviveSIGKILLOnDynamoDB(t *testing.T) {
	p := needAWSPeers(t)
	runsTheBinary(t)
	hooks := newHeldHooks()
	receipt := &killOnReceipt{hooks: hooks, done: make(chan string, 1)}
	srv := httptest.NewServer(receipt)
	t.Cleanup(srv.Close)
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	q := func(n string) string { return "e2e-outbox-" + sfx + "-" + n }
	f := newAWSE2E(t, p.endpoint, fmt.Sprintf(`
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

	ingress := f.start("ingress")
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
		w := f.start("worker")
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

	// The receiver takes one event, then the worker dies before the answer reaches it: that
	// event is delivered again, a duplicate under the same id.
	var (
		victim      *child
		victimReady = make(chan struct{})
	)
	receipt.setKill(func() {
		<-victimReady
		_ = victim.cmd.Process.Signal(syscall.SIGKILL)
		_ = victim.cmd.Wait()
	})
	victim = f.start("worker")
	close(victimReady)
	dupEvent := receipt.killed(t, 30*time.Second)

	f.start("worker")
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
	ev := hooks.events[dupEvent]
	if times := hooks.delivered[ev.JobID][dupEvent]; times < 2 {
		t.Fatalf("event %s, taken just before its worker was killed, delivered %d times; want it again under the same id", dupEvent, times)
	}
	t.Logf("%d jobs, %d COMPLETED by the %d workers killed while the receiver held their events "+
		"(%d deliveries cut off), 1 worker killed after a receipt; %d events delivered (%d duplicates, "+
		"each under its event's id), none lost", n, completedAtKills, kills, hooks.heldSeen, deliveries, deliveries-n)
}

// killOnReceipt is a heldHooks that, once told to, runs a kill after it has counted a delivery
// and before it answers it, so that the sender dies with the event received but not known to
// be.
type killOnReceipt struct {
	hooks *heldHooks
	mu    sync.Mutex
	kill  func()
	done  chan string // the id of the event whose answer the kill cut off
}

func (k *killOnReceipt) setKill(kill func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kill = kill
}

func (k *killOnReceipt) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	k.hooks.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		k.mu.Lock()
		kill := k.kill
		k.kill = nil
		k.mu.Unlock()
		if kill != nil {
			kill()
			var ev messages.Event
			_ = json.Unmarshal(body, &ev)
			k.done <- ev.ID
		}
	}
	w.WriteHeader(rec.Code)
}

// killed waits for the kill and returns the id of the event it cut off.
func (k *killOnReceipt) killed(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case id := <-k.done:
		return id
	case <-time.After(within):
		t.Fatalf("no event arrived within %s to kill its sender on", within)
		return ""
	}
}
