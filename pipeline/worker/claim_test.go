package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/pipeline/worker"
)

// writeLog is the SQLite store with every transition it is asked for written down, and
// before, when set, run ahead of each.
type writeLog struct {
	*sqlite.Store
	before func(tr pipeline.Transition)
	mu     sync.Mutex
	log    []pipeline.Transition
	reads  int
}

func (s *writeLog) ReadLatest(ctx context.Context, id string) (messages.JobRecord, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.ReadLatest(ctx, id)
}

func (s *writeLog) Get(ctx context.Context, id string) (messages.JobRecord, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.Get(ctx, id)
}

func (s *writeLog) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func (s *writeLog) Transition(ctx context.Context, id string, tr pipeline.Transition) (messages.JobRecord, error) {
	if s.before != nil {
		s.before(tr)
	}
	s.mu.Lock()
	s.log = append(s.log, tr)
	s.mu.Unlock()
	return s.Store.Transition(ctx, id, tr)
}

func (s *writeLog) transitions() []pipeline.Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pipeline.Transition(nil), s.log...)
}

// deferredSetup is a worker whose claims wait after (ClaimAfter), with its store's writes
// logged, and a job "id" accepted by intake (QUEUED).
func deferredSetup(t *testing.T, model *pipelinetest.FlakyModel, after time.Duration, id string) (*pipelinetest.Bundle, *writeLog) {
	t.Helper()
	var logged *writeLog
	b := pipelinetest.SetupWith(t, model, func(c *worker.Config) {
		c.ClaimAfter = after
		logged = &writeLog{Store: c.Store.(*sqlite.Store)}
		c.Store = logged
	})
	if _, _, err := b.Service.Submit(context.Background(), pipelinetest.TextJob(id), intake.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	return b, logged
}

// delivered is job's message on its nth delivery, as JetStream or SQS hand it over.
func delivered(t *testing.T, id string, n string) worker.Delivery {
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob(id))
	d.Metadata[messages.MetaDeliveryCount] = n
	return d
}

// processInBackground hands d to b's worker on a goroutine of its own and returns where its
// outcome will come.
func processInBackground(b *pipelinetest.Bundle, d worker.Delivery) <-chan worker.Outcome {
	done := make(chan worker.Outcome, 1)
	go func() { done <- b.Worker.Process(context.Background(), d) }()
	return done
}

func TestDeferredClaimCompletesInOneWrite(t *testing.T) {
	t.Parallel()
	b, store := deferredSetup(t, nil, time.Minute, "d1")
	if out := b.Worker.Process(context.Background(), delivered(t, "d1", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	rec := b.Record(t, "d1")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 1 || rec.ResultURL == "" || rec.Usage == nil {
		t.Fatalf("record %+v, want COMPLETED with 1 attempt", rec)
	}
	trs := store.transitions()
	if len(trs) != 1 || trs[0].To != messages.StatusCompleted || trs[0].AttemptsDelta != 1 {
		t.Fatalf("writes %+v, want one: COMPLETED counting the attempt", trs)
	}
	if got := b.Notes.Types(); len(got) != 1 || got[0] != messages.EventCompleted {
		t.Fatalf("events %v", got)
	}
}

func TestClaimBeforeRunOnRedeliveryAndWithoutACount(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"2", ""} {
		b, store := deferredSetup(t, nil, time.Minute, "e1")
		d := delivered(t, "e1", n)
		if n == "" {
			delete(d.Metadata, messages.MetaDeliveryCount) // Kafka: no count
		}
		if out := b.Worker.Process(context.Background(), d); out.Retry {
			t.Fatalf("count %q: %+v, want ack", n, out)
		}
		trs := store.transitions()
		if len(trs) != 2 || trs[0].To != messages.StatusProcessing || trs[1].To != messages.StatusCompleted {
			t.Fatalf("count %q: writes %+v, want the claim then COMPLETED", n, trs)
		}
		if rec := b.Record(t, "e1"); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
			t.Fatalf("count %q: record %+v", n, rec)
		}
	}
}

func TestDeferredClaimRecordedWhileTheJobRuns(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b, store := deferredSetup(t, model, 20*time.Millisecond, "d2")
	done := processInBackground(b, delivered(t, "d2", "1"))
	pipelinetest.WaitFor(t, func() bool {
		rec := b.Record(t, "d2")
		return rec.Status == messages.StatusProcessing && rec.Attempts == 1
	})
	close(model.Block)
	if out := <-done; out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if rec := b.Record(t, "d2"); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
		t.Fatalf("record %+v, want COMPLETED with 1 attempt", rec)
	}
	if trs := store.transitions(); len(trs) != 2 || trs[1].AttemptsDelta != 0 {
		t.Fatalf("writes %+v, want the claim then COMPLETED adding no attempt", trs)
	}
}

func TestDeferredClaimFailedAttemptIsCounted(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{Fails: 1, Err: errors.New("throttled")}
	b, _ := deferredSetup(t, model, time.Minute, "d3")
	if out := b.Worker.Process(context.Background(), delivered(t, "d3", "1")); !out.Retry {
		t.Fatalf("%+v, want retry", out)
	}
	if rec := b.Record(t, "d3"); rec.Status != messages.StatusQueued || rec.Attempts != 1 || rec.Error == nil {
		t.Fatalf("after the failed attempt: %+v, want QUEUED with 1 attempt and its error", rec)
	}
	if out := b.Worker.Process(context.Background(), delivered(t, "d3", "2")); out.Retry {
		t.Fatalf("second delivery: %+v", out)
	}
	if rec := b.Record(t, "d3"); rec.Status != messages.StatusCompleted || rec.Attempts != 2 {
		t.Fatalf("record %+v, want COMPLETED with 2 attempts", rec)
	}
}

func TestDeferredClaimShutdownWritesNothing(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b, store := deferredSetup(t, model, time.Minute, "d4")
	done := processInBackground(b, delivered(t, "d4", "1"))
	pipelinetest.WaitFor(t, func() bool { return model.Calls.Load() == 1 })
	b.Worker.CancelInFlight()
	if out := <-done; !out.Retry || !out.HandedBack {
		t.Fatalf("%+v, want handed back", out)
	}
	if rec := b.Record(t, "d4"); rec.Status != messages.StatusQueued || rec.Attempts != 0 {
		t.Fatalf("record %+v, want QUEUED with 0 attempts", rec)
	}
	if trs := store.transitions(); len(trs) != 0 {
		t.Fatalf("writes %+v, want none", trs)
	}
}

func TestDeferredClaimCancelledWhileRunning(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b, _ := deferredSetup(t, model, time.Minute, "d5")
	done := processInBackground(b, delivered(t, "d5", "1"))
	pipelinetest.WaitFor(t, func() bool { return model.Calls.Load() == 1 })
	if _, err := b.Service.Cancel(context.Background(), "d5", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-done:
		if out.Retry {
			t.Fatalf("%+v, want ack", out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("running job not stopped by cancel")
	}
	if rec := b.Record(t, "d5"); rec.Status != messages.StatusCancelled {
		t.Fatalf("record %+v, want CANCELLED", rec)
	}
}

func TestDeferredClaimCancelledBeforeItsResultIsRecorded(t *testing.T) {
	t.Parallel()
	// The cancel lands between the model's answer and the COMPLETED write: the write is
	// refused and the result just stored goes.
	b, store := deferredSetup(t, nil, time.Minute, "d6")
	store.before = func(tr pipeline.Transition) {
		if tr.To == messages.StatusCompleted {
			if _, err := b.Service.Cancel(context.Background(), "d6", ""); err != nil {
				t.Error(err)
			}
		}
	}
	if out := b.Worker.Process(context.Background(), delivered(t, "d6", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if rec := b.Record(t, "d6"); rec.Status != messages.StatusCancelled || rec.Attempts != 0 {
		t.Fatalf("record %+v, want CANCELLED", rec)
	}
	if _, err := b.Results.Get(context.Background(), "d6.json"); err == nil {
		t.Fatal("a cancelled job kept its result")
	}
}

func TestDeferredClaimDoesNotRunAnEndedJob(t *testing.T) {
	t.Parallel()
	b, _ := deferredSetup(t, nil, time.Minute, "d7")
	d := delivered(t, "d7", "1")
	b.Worker.Process(context.Background(), d)
	// The same message again as a first delivery (a producer that published it twice).
	if out := b.Worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("duplicate: %+v", out)
	}
	if n := b.Model.Calls.Load(); n != 1 {
		t.Fatalf("model called %d times for one job", n)
	}
	if rec := b.Record(t, "d7"); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
		t.Fatalf("record %+v", rec)
	}
}

func TestDeferredClaimOfAJobDroppedOnTheQueue(t *testing.T) {
	t.Parallel()
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) { c.ClaimAfter = time.Minute })
	if out := b.Worker.Process(context.Background(), delivered(t, "d8", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if rec := b.Record(t, "d8"); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
		t.Fatalf("record %+v", rec)
	}
}

func TestClaimBeforeRunUntilClaimEagerUntil(t *testing.T) {
	t.Parallel()
	var store *writeLog
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		c.ClaimAfter = time.Minute
		c.ClaimEagerUntil = time.Now().Add(time.Hour)
		store = &writeLog{Store: c.Store.(*sqlite.Store)}
		c.Store = store
	})
	if _, _, err := b.Service.Submit(context.Background(), pipelinetest.TextJob("u1"), intake.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := b.Worker.Process(context.Background(), delivered(t, "u1", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if trs := store.transitions(); len(trs) != 2 || trs[0].To != messages.StatusProcessing {
		t.Fatalf("writes %+v, want the claim then COMPLETED", trs)
	}
}

func TestFirstDeliveryRunsWithoutReadingItsRecord(t *testing.T) {
	t.Parallel()
	b, store := deferredSetup(t, nil, time.Minute, "r1")
	if out := b.Worker.Process(context.Background(), delivered(t, "r1", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if n := store.readCount(); n != 0 {
		t.Fatalf("the record was read %d times, want none", n)
	}
	if trs := store.transitions(); len(trs) != 1 || trs[0].To != messages.StatusCompleted || trs[0].AttemptsDelta != 1 {
		t.Fatalf("writes %+v, want one: COMPLETED counting the attempt", trs)
	}
	if rec := b.Record(t, "r1"); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
		t.Fatalf("record %+v", rec)
	}
}

func TestUnreadRunSkipsAJobCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	b, store := deferredSetup(t, nil, time.Minute, "r2")
	// The worker has read the cancel log before the cancel: its next read must see it.
	if out := b.Worker.Process(context.Background(), delivered(t, "r1", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if _, err := b.Service.Cancel(context.Background(), "r2", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(25 * time.Millisecond) // older than the worker's copy of the log may be
	if out := b.Worker.Process(context.Background(), delivered(t, "r2", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if n := b.Model.Calls.Load(); n != 1 {
		t.Fatalf("model called %d times, want once (r1 only)", n)
	}
	if rec := b.Record(t, "r2"); rec.Status != messages.StatusCancelled || rec.Attempts != 0 {
		t.Fatalf("record %+v, want CANCELLED", rec)
	}
	if n := store.readCount(); n != 1 {
		t.Fatalf("records read %d times, want once (r2's)", n)
	}
}

func TestUnreadRunOfAFailedJobKeepsItFailedWithoutAResult(t *testing.T) {
	t.Parallel()
	b, store := deferredSetup(t, nil, time.Minute, "r3")
	jerr := &messages.JobError{Code: messages.ErrCodeAttemptsExceeded, Message: "gave up"}
	if _, err := b.Store.Transition(context.Background(), "r3", pipeline.Transition{To: messages.StatusFailed, Error: jerr}); err != nil {
		t.Fatal(err)
	}
	// The dead job's message again as a first delivery (a producer that published it twice).
	if out := b.Worker.Process(context.Background(), delivered(t, "r3", "1")); out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if rec := b.Record(t, "r3"); rec.Status != messages.StatusFailed || rec.Attempts != 0 || rec.ResultURL != "" {
		t.Fatalf("record %+v, want FAILED as it was", rec)
	}
	if _, err := b.Results.Get(context.Background(), "r3.json"); err == nil {
		t.Fatal("a failed job got a result")
	}
	if n := store.readCount(); n != 0 {
		t.Fatalf("records read %d times, want none", n)
	}
}

func TestUnreadClaimOfAJobDroppedOnTheQueueCreatesItsRecord(t *testing.T) {
	t.Parallel()
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b := pipelinetest.SetupWith(t, model, func(c *worker.Config) { c.ClaimAfter = 10 * time.Millisecond })
	done := processInBackground(b, delivered(t, "r4", "1"))
	pipelinetest.WaitFor(t, func() bool {
		rec, err := b.Store.Get(context.Background(), "r4")
		return err == nil && rec.Status == messages.StatusProcessing && rec.Attempts == 1
	})
	close(model.Block)
	if out := <-done; out.Retry {
		t.Fatalf("%+v, want ack", out)
	}
	if rec := b.Record(t, "r4"); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
		t.Fatalf("record %+v, want COMPLETED with 1 attempt", rec)
	}
}
