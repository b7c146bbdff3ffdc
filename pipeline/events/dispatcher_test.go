package events_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/events"
)

// receiver records the events it is given, in order, and refuses an event while fail says so.
type receiver struct {
	mu   sync.Mutex
	got  []messages.Event
	fail func(messages.Event) bool
}

func (r *receiver) Notify(_ context.Context, n pipeline.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil && r.fail(n.Event) {
		return errors.New("refused")
	}
	r.got = append(r.got, n.Event)
	return nil
}

// byJob returns the ids of the events received, per job, in the order received.
func (r *receiver) byJob() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string][]string{}
	for _, ev := range r.got {
		m[ev.JobID] = append(m[ev.JobID], ev.ID)
	}
	return m
}

func setup(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// finishTwice gives job id two events, in this order: id/1 (CANCELLED), then id/2 (FAILED after
// a replay).
func finishTwice(t *testing.T, s pipeline.JobStore, id string) {
	t.Helper()
	ctx := t.Context()
	steps := []pipeline.Transition{
		{To: messages.StatusCancelled, EventID: id + "/1"},
		{From: []messages.Status{messages.StatusCancelled}, To: messages.StatusQueued},
		{To: messages.StatusFailed, Error: &messages.JobError{Code: "x", Message: "y"}, EventID: id + "/2"},
	}
	if _, _, err := s.Create(ctx, pipeline.NewJobRecord(messages.Job{JobID: id, Task: "summarize"}, nil, "", time.Now())); err != nil {
		t.Fatal(err)
	}
	for _, tr := range steps {
		if _, err := s.Transition(ctx, id, tr); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDispatchersDeliverEveryEventInOrder runs three dispatchers on one store: every event is
// delivered, each job's in order, and the outbox ends empty.
func TestDispatchersDeliverEveryEventInOrder(t *testing.T) {
	t.Parallel()
	s := setup(t)
	const jobs = 60
	for i := range jobs {
		finishTwice(t, s, fmt.Sprintf("job-%02d", i))
	}
	rcv := &receiver{}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 3 {
		d, err := events.New(events.Config{Outbox: s, Notifier: rcv, Batch: 7, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { d.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	eventually(t, 10*time.Second, "every event delivered", func() bool {
		n := 0
		for _, ids := range rcv.byJob() {
			n += len(ids)
		}
		return n >= 2*jobs
	})
	for id, got := range rcv.byJob() {
		if !slices.Equal(got, []string{id + "/1", id + "/2"}) {
			t.Errorf("job %s: events %v, want [%s/1 %s/2]", id, got, id, id)
		}
	}
	if left, err := s.ClaimEvents(t.Context(), "check", time.Minute, 1000); err != nil || len(left) != 0 {
		t.Fatalf("outbox after delivery: %d events, %v; want none", len(left), err)
	}
}

// TestDispatcherRetriesInOrder refuses a job's first event twice: it is retried after a
// backoff, and the job's second event waits behind it.
func TestDispatcherRetriesInOrder(t *testing.T) {
	t.Parallel()
	s := setup(t)
	finishTwice(t, s, "job-a")
	finishTwice(t, s, "job-b")
	refusals := 0
	rcv := &receiver{fail: func(ev messages.Event) bool {
		if ev.ID == "job-a/1" && refusals < 2 {
			refusals++
			return true
		}
		return false
	}}
	d, err := events.New(events.Config{Outbox: s, Notifier: rcv, Backoff: 50 * time.Millisecond, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, 10*time.Second, "every event delivered", func() bool { return len(rcv.byJob()["job-a"]) == 2 })
	if got := rcv.byJob(); !slices.Equal(got["job-a"], []string{"job-a/1", "job-a/2"}) || !slices.Equal(got["job-b"], []string{"job-b/1", "job-b/2"}) {
		t.Fatalf("events by job %v, want each job's in order", got)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if refusals != 2 {
		t.Fatalf("job-a/1 refused %d times, want 2", refusals)
	}
}

// TestDispatcherTakesOverADeadClaim: events claimed by a dispatcher that died are delivered by
// another once the claim's lease has run out.
func TestDispatcherTakesOverADeadClaim(t *testing.T) {
	t.Parallel()
	s := setup(t)
	finishTwice(t, s, "job-a")
	if got, err := s.ClaimEvents(t.Context(), "dead", 300*time.Millisecond, 10); err != nil || len(got) != 1 {
		t.Fatalf("claim = %d, %v", len(got), err)
	}
	rcv := &receiver{}
	d, err := events.New(events.Config{Outbox: s, Notifier: rcv, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, 10*time.Second, "the dead claim's events delivered", func() bool { return len(rcv.byJob()["job-a"]) == 2 })
	if got := rcv.byJob()["job-a"]; !slices.Equal(got, []string{"job-a/1", "job-a/2"}) {
		t.Fatalf("events %v, want in order", got)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := events.New(events.Config{Lease: -1})
	if err == nil {
		t.Fatal("New accepted a config without outbox, notifier, and a negative lease")
	}
	for _, want := range []string{"Config.Outbox", "Config.Notifier", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// TestWantsOnlyWhatASinkTakes: with callback_url the only destination, events of jobs without
// one are not kept.
func TestWantsOnlyWhatASinkTakes(t *testing.T) {
	t.Parallel()
	s := setup(t)
	with := messages.JobRecord{JobID: "a", Spec: []byte(`{"task":"summarize","callback_url":"https://example.com/h"}`)}
	without := messages.JobRecord{JobID: "b", Spec: []byte(`{"task":"summarize"}`)}
	only, err := events.New(events.Config{Outbox: s, Notifier: &receiver{}, CallbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	every, err := events.New(events.Config{Outbox: s, Notifier: &receiver{}})
	if err != nil {
		t.Fatal(err)
	}
	if !only.Wants(with) || only.Wants(without) || !every.Wants(with) || !every.Wants(without) {
		t.Fatalf("Wants: callback-only %v/%v, every sink %v/%v; want true/false, true/true",
			only.Wants(with), only.Wants(without), every.Wants(with), every.Wants(without))
	}
}
