package worker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/worker"
)

// slowCompletions is a job store whose transitions to COMPLETED wait for release.
type slowCompletions struct {
	pipeline.JobStore
	release   chan struct{}
	waiting   chan string
	ungrouped atomic.Int32 // completions not marked Grouped
}

func (s *slowCompletions) Transition(ctx context.Context, id string, t pipeline.Transition) (messages.JobRecord, error) {
	if t.To == messages.StatusCompleted {
		if !t.Grouped {
			s.ungrouped.Add(1)
		}
		s.waiting <- id
		<-s.release
	}
	return s.JobStore.Transition(ctx, id, t)
}

// placesWorker is b's worker again, with concurrency places and store in place of b's store.
func placesWorker(t *testing.T, b *pipelinetest.Bundle, store pipeline.JobStore, model *pipelinetest.FlakyModel, places int) *worker.Worker {
	t.Helper()
	w, err := worker.New(worker.Config{
		Store: store, Results: b.Results, DeadLetters: b.PubSub, Topics: pipelinetest.Topics,
		Router:      pipelinetest.Picker{Model: pipeline.Model{Name: "fast", ModelID: "sim", Client: model}},
		MaxAttempts: 3, Concurrency: places,
		Logger: zerolog.New(zerolog.NewTestWriter(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPlaceFreedWhenResultStored: with one place, a job whose completion is still being
// recorded does not keep the next job from the model, and its delivery is settled only once
// the completion is recorded. The completion, which no job waits for any more, is marked
// Grouped: a store may hold it to commit it with others.
func TestPlaceFreedWhenResultStored(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	store := &slowCompletions{JobStore: b.Store, release: make(chan struct{}), waiting: make(chan string, 2)}
	model := &pipelinetest.FlakyModel{}
	w := placesWorker(t, b, store, model, 1)

	var wg sync.WaitGroup
	outs := make([]worker.Outcome, 2)
	settled := make(chan int, 2)
	for i, id := range []string{"first", "second"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = w.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob(id)))
			settled <- i
		}()
		if id == "first" {
			if got := <-store.waiting; got != "first" {
				t.Fatalf("first completion recorded for %s", got)
			}
		}
	}
	// The second job reaches the model and its own completion while the first job's
	// completion is still waiting on the store.
	select {
	case got := <-store.waiting:
		if got != "second" {
			t.Fatalf("completion of %s, want second", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second job never ran: the first job's pending completion held the only place")
	}
	if n := model.Calls.Load(); n != 2 {
		t.Fatalf("model called %d times, want 2", n)
	}
	select {
	case i := <-settled:
		t.Fatalf("delivery %d settled before its completion was recorded", i)
	default:
	}
	close(store.release)
	wg.Wait()
	for i, id := range []string{"first", "second"} {
		if outs[i].Retry {
			t.Fatalf("%s: %+v, want ack", id, outs[i])
		}
		if rec := b.Record(t, id); rec.Status != messages.StatusCompleted || rec.Attempts != 1 {
			t.Fatalf("%s: %+v", id, rec)
		}
	}
	if n := store.ungrouped.Load(); n != 0 {
		t.Fatalf("%d completions written without Transition.Grouped", n)
	}
}

// TestWaitingForAPlaceHandsBackUnspent: a claimed job waiting for a place when its delivery
// is cut off goes back to the queue without spending an attempt, and never reaches the model.
func TestWaitingForAPlaceHandsBackUnspent(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	model := &pipelinetest.FlakyModel{Block: make(chan struct{})}
	w := placesWorker(t, b, b.Store, model, 1)

	done := make(chan worker.Outcome, 1)
	go func() {
		done <- w.Process(context.Background(), pipelinetest.JobDelivery(t, pipelinetest.TextJob("busy")))
	}()
	pipelinetest.WaitFor(t, func() bool { return model.Calls.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan worker.Outcome, 1)
	go func() { waiting <- w.Process(ctx, pipelinetest.JobDelivery(t, pipelinetest.TextJob("waits"))) }()
	pipelinetest.WaitFor(t, func() bool {
		rec, err := b.Store.Get(context.Background(), "waits")
		return err == nil && rec.Status == messages.StatusProcessing
	})
	cancel()
	out := <-waiting
	if !out.Retry || !out.HandedBack {
		t.Fatalf("outcome %+v, want handed back", out)
	}
	if rec := b.Record(t, "waits"); rec.Status != messages.StatusQueued || rec.Attempts != 0 {
		t.Fatalf("record %+v, want QUEUED with no attempt spent", rec)
	}
	close(model.Block)
	if out := <-done; out.Retry {
		t.Fatalf("busy: %+v", out)
	}
	if n := model.Calls.Load(); n != 1 {
		t.Fatalf("model called %d times, want 1", n)
	}
}
