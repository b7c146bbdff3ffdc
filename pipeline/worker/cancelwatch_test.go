package worker_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/pipeline/worker"
)

// cancelElsewhere records job id CANCELLED straight in the store, as an ingress in another
// process does: the worker's hub hears nothing of it.
func cancelElsewhere(t *testing.T, store pipeline.JobStore, id string) {
	t.Helper()
	if _, err := store.Transition(context.Background(), id, pipeline.Transition{
		From: []messages.Status{messages.StatusQueued, messages.StatusProcessing}, To: messages.StatusCancelled,
	}); err != nil {
		t.Fatal(err)
	}
}

func TestWatchCancelsStopsJobCancelledByAnotherProcess(t *testing.T) {
	t.Parallel()
	t.Run("one read for all jobs", func(t *testing.T) {
		t.Parallel()
		reads := &countingStore{}
		testWatchCancels(t, func(c *worker.Config) { reads.JobStore = c.Store; c.Store = reads })
		if reads.cancelReads.Load() == 0 {
			t.Fatal("the store's CancelledAmong was never asked")
		}
	})
	t.Run("store without CancelFinder", func(t *testing.T) {
		t.Parallel()
		testWatchCancels(t, func(c *worker.Config) { c.Store = plainStore{c.Store} })
	})
}

func testWatchCancels(t *testing.T, configure func(*worker.Config)) {
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	b := pipelinetest.SetupWith(t, model, configure)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go b.Worker.WatchCancels(ctx, 20*time.Millisecond)
	for _, id := range []string{"x1", "x2"} {
		if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob(id), intake.SubmitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	done := map[string]chan worker.Outcome{"x1": make(chan worker.Outcome, 1), "x2": make(chan worker.Outcome, 1)}
	for id, ch := range done {
		go func() { ch <- b.Worker.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob(id))) }()
	}
	pipelinetest.WaitFor(t, func() bool { return model.Calls.Load() == 2 })

	start := time.Now()
	cancelElsewhere(t, b.Store, "x1")
	select {
	case out := <-done["x1"]:
		if out.Retry {
			t.Fatalf("outcome %+v, want ack", out)
		}
	case <-time.After(time.Second):
		t.Fatal("the job cancelled in the store was not stopped within 1s")
	}
	t.Logf("stopped %s after the cancel was recorded", time.Since(start).Round(time.Millisecond))
	if got := b.Record(t, "x1"); got.Status != messages.StatusCancelled || got.ResultURL != "" {
		t.Fatalf("x1: %s with result_url %q, want CANCELLED without one", got.Status, got.ResultURL)
	}
	if _, err := b.Results.Get(ctx, pipeline.ResultKey("x1")); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("result of the cancelled job: %v, want none", err)
	}
	// The other job runs on and completes.
	select {
	case <-done["x2"]:
		t.Fatal("a job that was not cancelled stopped")
	case <-time.After(100 * time.Millisecond):
	}
	close(model.Block)
	<-done["x2"]
	if got := b.Record(t, "x2"); got.Status != messages.StatusCompleted {
		t.Fatalf("x2: %s, want COMPLETED", got.Status)
	}
}

// cancellingResults stores a result and then, before the worker records the job COMPLETED,
// has the job cancelled elsewhere: the race a poll interval leaves open.
type cancellingResults struct {
	*file.Store
	jobs *sqlite.Store
	t    *testing.T
}

func (r cancellingResults) Put(ctx context.Context, key string, data []byte) error {
	if err := r.Store.Put(ctx, key, data); err != nil {
		return err
	}
	cancelElsewhere(r.t, r.jobs, "late")
	return nil
}

func TestCancelledJobKeepsNoResultStoredBeforeTheCancelWasSeen(t *testing.T) {
	t.Parallel()
	var b *pipelinetest.Bundle
	b = pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		c.Results = cancellingResults{Store: c.Results.(*file.Store), jobs: c.Store.(*sqlite.Store), t: t}
	})
	ctx := context.Background()
	if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("late"), intake.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := b.Worker.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob("late"))); out.Retry {
		t.Fatalf("outcome %+v, want ack", out)
	}
	if got := b.Record(t, "late"); got.Status != messages.StatusCancelled || got.ResultURL != "" {
		t.Fatalf("%s with result_url %q, want CANCELLED without one", got.Status, got.ResultURL)
	}
	if _, err := b.Results.Get(ctx, pipeline.ResultKey("late")); !errors.Is(err, pipeline.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("result of the cancelled job: %v, want it removed", err)
	}
	if got := b.Notes.Types(); len(got) != 0 {
		t.Fatalf("events %v, want none from the worker", got)
	}
}

func TestWatchCancelsReadsNothingWhileIdle(t *testing.T) {
	t.Parallel()
	reads := &countingStore{}
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) { reads.JobStore = c.Store; c.Store = reads })
	ctx, stop := context.WithCancel(context.Background())
	go b.Worker.WatchCancels(ctx, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	stop()
	if n := reads.cancelReads.Load(); n != 0 {
		t.Fatalf("%d reads with no job running, want 0", n)
	}
}

// countingStore is a job store that counts the CancelledAmong reads it answers.
type countingStore struct {
	pipeline.JobStore
	cancelReads atomic.Int64
}

func (s *countingStore) CancelledAmong(ctx context.Context, ids []string) ([]string, error) {
	s.cancelReads.Add(1)
	return s.JobStore.(pipeline.CancelFinder).CancelledAmong(ctx, ids)
}

// plainStore is a job store with none of the optional abilities.
type plainStore struct{ pipeline.JobStore }

// landingResults stores a result and then waits for the attempt to be cancelled, answering
// with the cancel: a write that landed although its caller saw it cut off.
type landingResults struct {
	*file.Store
	stored chan struct{}
}

func (r landingResults) Put(ctx context.Context, key string, data []byte) error {
	if err := r.Store.Put(context.WithoutCancel(ctx), key, data); err != nil {
		return err
	}
	close(r.stored)
	<-ctx.Done()
	return ctx.Err()
}

func TestCancelledJobKeepsNoResultWhoseWriteWasCutOff(t *testing.T) {
	t.Parallel()
	stored := make(chan struct{})
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		c.Results = landingResults{Store: c.Results.(*file.Store), stored: stored}
	})
	ctx := context.Background()
	if _, _, err := b.Service.Submit(ctx, pipelinetest.TextJob("cut"), intake.SubmitOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan worker.Outcome, 1)
	go func() { done <- b.Worker.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob("cut"))) }()
	<-stored
	if _, err := b.Service.Cancel(ctx, "cut", ""); err != nil {
		t.Fatal(err)
	}
	if out := <-done; out.Retry {
		t.Fatalf("outcome %+v, want ack", out)
	}
	if _, err := b.Results.Get(ctx, pipeline.ResultKey("cut")); !errors.Is(err, pipeline.ErrNotFound) && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("result of the cancelled job: %v, want it removed", err)
	}
}
