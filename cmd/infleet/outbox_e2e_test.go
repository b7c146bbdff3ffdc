package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/webhook"
	"github.com/infleet/infleet/messages"
)

// heldHooks is a webhook receiver that holds every request while held is open, so that a
// process can be killed with its events recorded but not yet delivered (a request that came
// while held is never counted), and then counts the events it answered 200, by job and event
// id.
type heldHooks struct {
	held chan struct{} // closed: answer at once

	mu        sync.Mutex
	heldSeen  int                       // requests that arrived while held
	delivered map[string]map[string]int // job id -> event id -> deliveries answered 200
	events    map[string]messages.Event // event id -> the event
	mismatch  []string                  // requests whose id header is not the JSON's id
}

func newHeldHooks() *heldHooks {
	return &heldHooks{held: make(chan struct{}), delivered: map[string]map[string]int{},
		events: map[string]messages.Event{}}
}

func (h *heldHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	select {
	case <-h.held:
	default:
		h.mu.Lock()
		h.heldSeen++
		h.mu.Unlock()
		// Never counted: the sender is killed while it waits, and a delivery to a dead
		// process must not pass for one.
		select {
		case <-h.held:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev messages.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := r.Header.Get(webhook.EventIDHeader); got != ev.ID || ev.ID == "" {
		h.mismatch = append(h.mismatch, fmt.Sprintf("header %q, JSON id %q", got, ev.ID))
	}
	if h.delivered[ev.JobID] == nil {
		h.delivered[ev.JobID] = map[string]int{}
	}
	h.delivered[ev.JobID][ev.ID]++
	h.events[ev.ID] = ev
}

// TestOutboxEventsSurviveSIGKILL records jobs COMPLETED while the webhook receiver holds every
// delivery, SIGKILLs the process with all their events recorded and none delivered, restarts it
// on the same data dir and checks that every job's event arrives: at least once, under one
// stable id (header and JSON agree), none lost.
func TestOutboxEventsSurviveSIGKILL(t *testing.T) {
	runsTheBinary(t)
	hooks := newHeldHooks()
	srv := httptest.NewServer(hooks)
	t.Cleanup(srv.Close)
	f := newE2E(t, fmt.Sprintf(`
models: [{name: fast, provider: sim, latency: 5ms}]
routes: {default: fast}
workers: {concurrency: 16}
notify:
  webhook: {url: %q, allow_private: true, max_attempts: 1}
  outbox: {lease: 2s, poll: 100ms}
log: {level: warn}
`, srv.URL))
	c := f.serve()
	const n = 60
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"outbox job %d"}}`, i)))
	}
	c.api.eventually(30*time.Second, func() bool {
		return countStatus(c.api.statuses(), messages.StatusCompleted) == n
	})
	c.api.eventually(10*time.Second, func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return hooks.heldSeen > 0
	})
	// Every job is COMPLETED and its event is being sent: kill the process between the two.
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	hooks.mu.Lock()
	if len(hooks.delivered) != 0 {
		hooks.mu.Unlock()
		t.Fatalf("events delivered before the kill: %v; the receiver was to hold them all", hooks.delivered)
	}
	hooks.mu.Unlock()
	close(hooks.held)

	c2 := f.serve()
	c2.api.eventually(60*time.Second, func() bool {
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		return len(hooks.delivered) == n
	})
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if len(hooks.mismatch) > 0 {
		t.Fatalf("event id header and JSON id disagree: %v", hooks.mismatch)
	}
	duplicates := 0
	for _, id := range ids {
		got := hooks.delivered[id]
		if len(got) != 1 {
			t.Fatalf("job %s: events %v, want one event id", id, got)
		}
		for evID, times := range got {
			duplicates += times - 1
			if ev := hooks.events[evID]; ev.Type != messages.EventCompleted || ev.JobID != id {
				t.Fatalf("job %s: event %+v, want %s", id, ev, messages.EventCompleted)
			}
		}
	}
	t.Logf("%d jobs, %d events delivered after the kill (%d duplicates); %d deliveries were under way at the kill",
		n, n+duplicates, duplicates, hooks.heldSeen)
}
