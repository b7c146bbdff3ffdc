package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestBatchAnswersEachWrite sends creates and transitions that succeed, conflict, miss and
// fail as one batch, and checks that each gets its own answer: a write the server refuses
// fails alone, and the rest of its batch is applied.
func TestBatchAnswersEachWrite(t *testing.T) {
	t.Parallel()
	setupStore, cfg := setup(t)
	ctx := t.Context()
	at := time.Now()
	for i := range 6 {
		if _, _, err := setupStore.Create(ctx, job(fmt.Sprintf("old-%d", i), at)); err != nil {
			t.Fatal(err)
		}
	}
	cfg.MaxConns = 2 // one writer
	hold := make(chan struct{})
	s, err := postgres.OpenHeld(ctx, cfg, hold)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	nul := job("bad-nul", at)
	nul.Task = "sum\x00marize"
	utf := job("bad-utf8", at)
	utf.Tenant = "acme\xff"
	long := job("bad-long-key", at)
	var key strings.Builder
	for key.Len() < 10000 { // random, so that it stays beyond a btree entry's 2704 bytes once compressed
		key.WriteString(rand.Text())
	}
	long.IdempotencyKey = key.String()
	dupKey := job("dup-key", at)
	dupKey.IdempotencyKey = "key-old-0"
	toProcessing := pipeline.Transition{From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1}

	type write struct {
		name string
		run  func() error
	}
	var writes []write
	for i := range 8 {
		id := fmt.Sprintf("new-%d", i)
		writes = append(writes, write{id, func() error {
			rec, created, err := s.Create(ctx, job(id, at))
			if err != nil || !created || rec.JobID != id {
				return fmt.Errorf("Create = %s, %v, %v; want %s, true, nil", rec.JobID, created, err, id)
			}
			return nil
		}})
	}
	for _, bad := range []messages.JobRecord{nul, utf, long} {
		writes = append(writes, write{bad.JobID, func() error {
			if _, _, err := s.Create(ctx, bad); err == nil {
				return errors.New("Create = nil error, want the server's refusal")
			}
			return nil
		}})
	}
	writes = append(writes, write{"dup-key", func() error {
		rec, created, err := s.Create(ctx, dupKey)
		if err != nil || created || rec.JobID != "old-0" {
			return fmt.Errorf("Create with a taken key = %s, %v, %v; want old-0, false, nil", rec.JobID, created, err)
		}
		return nil
	}})
	for i := 1; i < 5; i++ {
		id := fmt.Sprintf("old-%d", i)
		writes = append(writes, write{"transition " + id, func() error {
			rec, err := s.Transition(ctx, id, toProcessing)
			if err != nil || rec.Status != messages.StatusProcessing || rec.Attempts != 1 {
				return fmt.Errorf("Transition = %s/%d, %v; want PROCESSING/1, nil", rec.Status, rec.Attempts, err)
			}
			return nil
		}})
	}
	writes = append(writes, write{"transition conflict", func() error {
		rec, err := s.Transition(ctx, "old-5", pipeline.Transition{From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted})
		if !errors.Is(err, pipeline.ErrConflict) || rec.Status != messages.StatusQueued {
			return fmt.Errorf("Transition from a status the job is not in = %s, %v; want QUEUED, ErrConflict", rec.Status, err)
		}
		return nil
	}}, write{"transition missing", func() error {
		if _, err := s.Transition(ctx, "missing", toProcessing); !errors.Is(err, pipeline.ErrNotFound) {
			return fmt.Errorf("Transition of a missing job = %v, want ErrNotFound", err)
		}
		return nil
	}})

	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Go(func() { errs[i] = w.run() })
	}
	// The writer holds the first write it took until every other one waits behind it.
	for deadline := time.Now().Add(10 * time.Second); postgres.QueueLen(s) < len(writes)-1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", postgres.QueueLen(s), len(writes)-1)
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", writes[i].name, err)
		}
	}
	if n := postgres.Batches(s); n != 1 {
		t.Errorf("the writer took %d batches, want 1", n)
	}
	for i := range 8 {
		if _, err := s.Get(ctx, fmt.Sprintf("new-%d", i)); err != nil {
			t.Errorf("Get new-%d: %v", i, err)
		}
	}
	for _, id := range []string{"bad-nul", "bad-utf8", "bad-long-key", "dup-key"} {
		if _, err := s.Get(ctx, id); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("Get %s = %v, want ErrNotFound", id, err)
		}
	}
}

// TestWriteContextEnded checks that a write whose context has ended answers with the
// context's error and, not sent yet, is not applied.
func TestWriteContextEnded(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Create(ctx, job("job-1", time.Now())); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with an ended context = %v, want context.Canceled", err)
	}
	if _, err := s.Transition(ctx, "job-1", pipeline.Transition{To: messages.StatusProcessing}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Transition with an ended context = %v, want context.Canceled", err)
	}
	if _, err := s.Get(t.Context(), "job-1"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
}

// TestCloseWithWritesInFlight closes a store while writes run: each write either succeeds or
// fails with ErrClosed (or a closed-pool error), none hangs, and writes after Close fail.
func TestCloseWithWritesInFlight(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("job-%02d-%04d", g, i)
				if _, _, err := s.Create(context.Background(), job(id, time.Now())); err != nil {
					return
				}
				if _, err := s.Transition(context.Background(), id, pipeline.Transition{To: messages.StatusProcessing}); err != nil {
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if _, _, err := s.Create(t.Context(), job("late", time.Now())); !errors.Is(err, postgres.ErrClosed) {
		t.Fatalf("Create after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Transition(t.Context(), "late", pipeline.Transition{To: messages.StatusProcessing}); !errors.Is(err, postgres.ErrClosed) {
		t.Fatalf("Transition after Close = %v, want ErrClosed", err)
	}
}
