package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/pipeline/storetest"
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
	storetest.BenchLifecycle(b, s, job)
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
	storetest.BenchCancelledAmong(b, s, 2000)
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
