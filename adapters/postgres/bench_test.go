package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// BenchmarkCreateTransitionParallel runs, per op, the three writes of one job's life: Create,
// QUEUED → PROCESSING and PROCESSING → COMPLETED, from many goroutines at once (32 per CPU,
// as a worker pool runs many jobs per core) over a pool of DefaultMaxConns connections. It
// reports jobs/s. The figure depends on the server's fsync and synchronous_commit settings.
func BenchmarkCreateTransitionParallel(b *testing.B) {
	dsn := testDSN(b)
	s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Schema: newSchema(b, dsn)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	usage := &messages.Usage{InputTokens: 120, OutputTokens: 48}
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := fmt.Sprintf("job-%09d", seq.Add(1))
			if _, _, err := s.Create(ctx, job(id, time.Now())); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Transition(ctx, id, pipeline.Transition{
				From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1, Model: "fast",
			}); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Transition(ctx, id, pipeline.Transition{
				From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted,
				Usage: usage, ResultURL: messages.ResultPath(id),
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkGet reads one job from many goroutines.
func BenchmarkGet(b *testing.B) {
	s, _ := setup(b)
	ctx := context.Background()
	if _, _, err := s.Create(ctx, job("job-1", time.Now())); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "job-1"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCancelledAmong is the read a worker process makes every workers.cancel_poll while it
// runs jobs: which of its 64 running jobs (workers.concurrency's default) were cancelled, in a
// store of 2,000 jobs, two of them cancelled. One round trip.
func BenchmarkCancelledAmong(b *testing.B) {
	s, _ := setup(b)
	ctx := context.Background()
	var ids []string
	for i := range 2000 {
		id := fmt.Sprintf("job-%05d", i)
		if _, _, err := s.Create(ctx, job(id, time.Now())); err != nil {
			b.Fatal(err)
		}
		if i%30 == 0 && len(ids) < 64 {
			ids = append(ids, id)
		}
	}
	for _, id := range ids[:2] {
		if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusCancelled}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		got, err := s.CancelledAmong(ctx, ids)
		if err != nil || len(got) != 2 {
			b.Fatalf("CancelledAmong = %v, %v; want 2 ids", got, err)
		}
	}
}

// BenchmarkModelLimitsPerCall is what a model call with fleet-wide rpm, tpm and
// max_concurrency costs the PostgreSQL store: a bucket take for each rate, a lease and its
// release.
func BenchmarkModelLimitsPerCall(b *testing.B) {
	s, _ := setup(b)
	ctx := context.Background()
	for b.Loop() {
		now := time.Now()
		for _, k := range []string{"model:m:rpm", "model:m:tpm"} {
			if _, err := s.Take(ctx, k, 1e9, 1e9, 1, now); err != nil {
				b.Fatal(err)
			}
		}
		if ok, err := s.Lease(ctx, "model:m:concurrency", "bench", 1<<20, now.Add(time.Minute), now); err != nil || !ok {
			b.Fatalf("lease: %v, %v", ok, err)
		}
		if err := s.Release(ctx, "model:m:concurrency", "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkModelPacePerCall is the store's cost of a call to a model paced for the fleet: one
// take from the model's pace bucket (the row itself is read in the background, every 200 ms).
func BenchmarkModelPacePerCall(b *testing.B) {
	s, _ := setup(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Take(ctx, "model:m:pace", 1e9, 1e9, 1, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
