package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// outbox returns s as a pipeline.Outbox, or skips the test.
func outbox(t *testing.T, s pipeline.JobStore) pipeline.Outbox {
	t.Helper()
	o, ok := s.(pipeline.Outbox)
	if !ok {
		t.Skipf("%T is not a pipeline.Outbox", s)
	}
	return o
}

// claim claims for holder with a long lease and fails the test on an error.
func claim(t *testing.T, o pipeline.Outbox, holder string, limit int) []pipeline.OutboxEvent {
	t.Helper()
	evs, err := o.ClaimEvents(t.Context(), holder, time.Minute, limit)
	if err != nil {
		t.Fatalf("ClaimEvents(%s): %v", holder, err)
	}
	return evs
}

// eventIDs returns the ids of evs.
func eventIDs(evs []pipeline.OutboxEvent) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID()
	}
	return ids
}

// testOutboxEvents checks that a transition with an EventID keeps exactly its event (the
// notification of the record it wrote, with that id), that one without, or one refused, keeps
// none, and that a claimed event is not handed out again until deleted.
func testOutboxEvents(t *testing.T, s pipeline.JobStore) {
	o := outbox(t, s)
	ctx := t.Context()
	rec := queued("job-1", base)
	rec.Spec = []byte(`{"task":"summarize","callback_url":"https://example.com/hook"}`)
	mustCreate(t, s, rec)
	mustTransition(t, s, "job-1", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1})
	if got := claim(t, o, "a", 10); len(got) != 0 {
		t.Fatalf("a transition without EventID kept events %v", eventIDs(got))
	}
	_, err := s.Transition(ctx, "job-1", pipeline.Transition{From: []messages.Status{messages.StatusQueued},
		To: messages.StatusCancelled, EventID: "ev-refused"})
	if !errors.Is(err, pipeline.ErrConflict) {
		t.Fatalf("Transition from QUEUED of a PROCESSING job = %v, want ErrConflict", err)
	}
	done := mustTransition(t, s, "job-1", pipeline.Transition{From: []messages.Status{messages.StatusProcessing},
		To: messages.StatusCompleted, ResultURL: messages.ResultPath("job-1"), EventID: "ev-1"})
	got := claim(t, o, "a", 10)
	if len(got) != 1 {
		t.Fatalf("claimed %v, want the one event ev-1", eventIDs(got))
	}
	want := pipeline.EventOf(done, "ev-1")
	ev := got[0]
	if ev.ID() != "ev-1" || ev.JobID() != "job-1" || ev.Attempts != 1 || ev.CallbackURL != want.CallbackURL ||
		ev.Event.Type != messages.EventCompleted || ev.Event.Status != messages.StatusCompleted ||
		ev.Event.ResultURL != want.Event.ResultURL || !ev.Event.OccurredAt.Equal(want.Event.OccurredAt) {
		t.Fatalf("claimed %+v, want %+v with 1 attempt", ev, want)
	}
	if again := claim(t, o, "b", 10); len(again) != 0 {
		t.Fatalf("a claimed event was handed out again: %v", eventIDs(again))
	}
	if err := o.DeleteEvents(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := o.DeleteEvents(ctx, got); err != nil {
		t.Fatalf("deleting a deleted event: %v", err)
	}
	if err := o.DelayEvent(ctx, ev, time.Now()); err != nil {
		t.Fatalf("delaying a deleted event: %v", err)
	}
	if after := claim(t, o, "b", 10); len(after) != 0 {
		t.Fatalf("a deleted event was handed out: %v", eventIDs(after))
	}
}

// testOutboxOrder checks per-job order: a job's second event is handed out only once its first
// is deleted, while the first events of other jobs come in the same claim.
func testOutboxOrder(t *testing.T, s pipeline.JobStore) {
	o := outbox(t, s)
	ctx := t.Context()
	for _, id := range []string{"job-a", "job-b"} {
		mustCreate(t, s, queued(id, base))
		mustTransition(t, s, id, pipeline.Transition{To: messages.StatusCancelled, EventID: id + "-1"})
	}
	// A replay takes job-a out of CANCELLED and it fails: a second event of job-a.
	mustTransition(t, s, "job-a", pipeline.Transition{From: []messages.Status{messages.StatusCancelled}, To: messages.StatusQueued})
	mustTransition(t, s, "job-a", pipeline.Transition{To: messages.StatusFailed,
		Error: &messages.JobError{Code: "x", Message: "y"}, EventID: "job-a-2"})

	first := claim(t, o, "a", 10)
	ids := eventIDs(first)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"job-a-1", "job-b-1"}) {
		t.Fatalf("first claim = %v, want the first event of each job", ids)
	}
	if got := claim(t, o, "b", 10); len(got) != 0 {
		t.Fatalf("job-a's second event was handed out while its first is claimed: %v", eventIDs(got))
	}
	if err := o.DeleteEvents(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := claim(t, o, "b", 10)
	if ids := eventIDs(second); !slices.Equal(ids, []string{"job-a-2"}) {
		t.Fatalf("claim after the first events were deleted = %v, want [job-a-2]", ids)
	}
	if second[0].Event.Type != messages.EventFailed {
		t.Fatalf("job-a's second event is %s, want %s", second[0].Event.Type, messages.EventFailed)
	}
}

// testOutboxLease checks that a claim runs out (a dispatcher that died gives its events back,
// counting another attempt) and that DelayEvent holds an event until the time it names.
func testOutboxLease(t *testing.T, s pipeline.JobStore) {
	o := outbox(t, s)
	ctx := t.Context()
	mustCreate(t, s, queued("job-1", base))
	mustTransition(t, s, "job-1", pipeline.Transition{To: messages.StatusCancelled, EventID: "ev-1"})
	got, err := o.ClaimEvents(ctx, "dead", 300*time.Millisecond, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("ClaimEvents = %v, %v; want ev-1", eventIDs(got), err)
	}
	if again := claim(t, o, "b", 10); len(again) != 0 {
		t.Fatalf("handed out during the lease: %v", eventIDs(again))
	}
	var back []pipeline.OutboxEvent
	deadline := time.Now().Add(10 * time.Second)
	for len(back) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		back = claim(t, o, "b", 10)
	}
	if len(back) != 1 || back[0].ID() != "ev-1" || back[0].Attempts != 2 {
		t.Fatalf("after the lease ran out claimed %+v, want ev-1 at attempt 2", back)
	}
	until := time.Now().Add(700 * time.Millisecond)
	if err := o.DelayEvent(ctx, back[0], until); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(until.Add(-200 * time.Millisecond)) {
		if got := claim(t, o, "c", 10); len(got) != 0 {
			t.Fatalf("handed out before its delay ended: %v", eventIDs(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var later []pipeline.OutboxEvent
	for len(later) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		later = claim(t, o, "c", 10)
	}
	if len(later) != 1 || later[0].Attempts != 3 {
		t.Fatalf("after the delay claimed %+v, want ev-1 at attempt 3", later)
	}
}

// testOutboxRacingClaims checks that racing dispatchers never share an event and, between
// them, hand out every event once.
func testOutboxRacingClaims(t *testing.T, s pipeline.JobStore) {
	o := outbox(t, s)
	const jobs = 40
	for i := range jobs {
		id := fmt.Sprintf("job-%02d", i)
		mustCreate(t, s, queued(id, base))
		mustTransition(t, s, id, pipeline.Transition{To: messages.StatusCancelled, EventID: "ev-" + id})
	}
	var (
		mu   sync.Mutex
		seen = map[string]string{}
		wg   sync.WaitGroup
	)
	for h := range 4 {
		holder := fmt.Sprint("holder-", h)
		wg.Go(func() {
			for range 20 {
				evs, err := o.ClaimEvents(t.Context(), holder, time.Minute, 5)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, ev := range evs {
					if other, dup := seen[ev.ID()]; dup {
						t.Errorf("event %s handed to %s and %s", ev.ID(), other, holder)
					}
					seen[ev.ID()] = holder
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Fatalf("handed out %d events, want %d", len(seen), jobs)
	}
}

// testOutboxRacingTransitions records a job's events while two dispatchers claim and delete
// them, so that every claim and delete races the transitions that add to the job's events:
// each event is delivered once, in the order of its transitions, and none is lost.
func testOutboxRacingTransitions(t *testing.T, s pipeline.JobStore) {
	o := outbox(t, s)
	OutboxRacingTransitions(t, s, o, o)
}

// OutboxRacingTransitions is the suite's OutboxRacingTransitions for a store whose
// dispatchers may live elsewhere (another client of the same table, as another process): s
// records 30 events on job "job-1" (created here, so s must be empty of it) while each of
// dispatchers claims and deletes them. It fails t unless every event is delivered once, in
// order, and none is left to claim.
func OutboxRacingTransitions(t *testing.T, s pipeline.JobStore, dispatchers ...pipeline.Outbox) {
	t.Helper()
	ctx := t.Context()
	mustCreate(t, s, queued("job-1", base))
	const events = 30
	want := make([]string, events)
	for i := range want {
		want[i] = fmt.Sprintf("ev-%03d", i)
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for _, id := range want {
			if _, err := s.Transition(ctx, "job-1", pipeline.Transition{To: messages.StatusCancelled, EventID: id}); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Transition(ctx, "job-1", pipeline.Transition{From: []messages.Status{messages.StatusCancelled}, To: messages.StatusQueued}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	deadline := time.Now().Add(30 * time.Second)
	for h, o := range dispatchers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				evs, err := o.ClaimEvents(ctx, fmt.Sprint("holder-", h), time.Minute, 10)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, eventIDs(evs)...)
				n := len(got)
				mu.Unlock()
				if err := o.DeleteEvents(ctx, evs); err != nil {
					t.Error(err)
					return
				}
				if n >= events {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	<-writerDone
	wg.Wait()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v,\nwant %v", got, want)
	}
	if left := claim(t, dispatchers[0], "late", 10); len(left) != 0 {
		t.Fatalf("events left after every event was delivered: %v", eventIDs(left))
	}
}
