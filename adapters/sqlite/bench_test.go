package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

// benchJobLifecycle runs, per op, the three writes of one job's life: Create, QUEUED →
// PROCESSING and PROCESSING → COMPLETED, from many goroutines at once (b.SetParallelism
// goroutines per CPU, as a worker pool runs many jobs per core). It reports jobs/s.
func benchJobLifecycle(b *testing.B, open func(context.Context, sqlite.Config) (*sqlite.Store, error)) {
	for _, sync := range []string{sqlite.SynchronousNormal, sqlite.SynchronousFull} {
		b.Run("sync="+sync, func(b *testing.B) {
			benchJobLifecycleSync(b, open, sync)
		})
	}
}

func benchJobLifecycleSync(b *testing.B, open func(context.Context, sqlite.Config) (*sqlite.Store, error), sync string) {
	s, err := open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "jobs.db"), Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	storetest.BenchLifecycle(b, s, job)
}

// BenchmarkCreateTransitionParallel is the store as infleet runs it, with group commit, at
// both synchronous settings.
func BenchmarkCreateTransitionParallel(b *testing.B) {
	benchJobLifecycle(b, sqlite.Open)
}

// BenchmarkCreateTransitionParallelNoGather is the store with a writer that commits grouped
// completions as soon as it takes them, to show what holding them (gather) buys: compare its
// completion=grouped with BenchmarkCreateTransitionParallel's.
func BenchmarkCreateTransitionParallelNoGather(b *testing.B) {
	benchJobLifecycle(b, sqlite.OpenWithoutGather)
}

// BenchmarkCreateTransitionParallelSingleRows is the store with a writer that gives every
// completion a statement of its own, to show what writing runs of them in one statement buys:
// compare its completion=grouped and completion=unreturned with
// BenchmarkCreateTransitionParallel's.
func BenchmarkCreateTransitionParallelSingleRows(b *testing.B) {
	benchJobLifecycle(b, sqlite.OpenWithSingleRows)
}

// BenchmarkCreateTransitionParallelNoGroupCommit is the same work on the same kind of file
// with every write in its own transaction, to show what group commit buys.
func BenchmarkCreateTransitionParallelNoGroupCommit(b *testing.B) {
	benchJobLifecycle(b, sqlite.OpenWithoutGroupCommit)
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

// BenchmarkDeleteFinishedBefore deletes batches of 500 finished jobs (the reaper's default
// batch), each op one batch, from a table that holds 10,000 other finished jobs too new to go:
// how long one batch holds the writer. Filling the table is not timed.
func BenchmarkDeleteFinishedBefore(b *testing.B) {
	const batch = 500
	s, _ := setup(b)
	ctx := context.Background()
	old, cutoff := time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	var seq atomic.Int64
	fill := func(n int, at time.Time) {
		ids := make(chan string, n)
		for range n {
			ids <- fmt.Sprintf("job-%09d", seq.Add(1))
		}
		close(ids)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for id := range ids {
					rec := job(id, at)
					rec.Status = messages.StatusCompleted
					if _, _, err := s.Create(ctx, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	fill(10000, time.Now())
	b.ResetTimer()
	var deleted int
	for b.Loop() {
		b.StopTimer()
		fill(batch, old)
		b.StartTimer()
		ids, err := s.DeleteFinishedBefore(ctx, cutoff, batch)
		if err != nil {
			b.Fatal(err)
		}
		deleted += len(ids)
	}
	b.ReportMetric(float64(deleted)/float64(b.N), "jobs/op")
}

// BenchmarkCancelledAmong is the read a worker process makes every workers.cancel_poll while it
// runs jobs: which of its 64 running jobs (workers.concurrency's default) were cancelled, in a
// store of 10,000 jobs, two of them cancelled.
func BenchmarkCancelledAmong(b *testing.B) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "jobs.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	storetest.BenchCancelledAmong(b, s, 10000)
}

// BenchmarkCreateParallel is what `infleet ingress` asks of the store: only creates, from 64
// goroutines (the harness's clients), of jobs without a tenant or an idempotency key and with a
// spec of about 200 bytes. It reports jobs/s.
func BenchmarkCreateParallel(b *testing.B) {
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "jobs.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	spec := []byte(`{"job_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","task":"summarize","priority":"normal",` +
		`"input":{"text":"The quarterly report shows revenue up four percent on the year, with costs flat."}}`)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			now := time.Now()
			rec := messages.JobRecord{JobID: pipeline.NewJobID(), Status: messages.StatusQueued, Task: "summarize",
				Priority: messages.PriorityNormal, CreatedAt: now, UpdatedAt: now, Spec: spec}
			if _, _, err := s.Create(ctx, rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkCreateLatencyBesideTransitions measures what an accept waits for while a busy
// worker pool writes: 256 goroutines keep moving their own job between QUEUED and PROCESSING,
// and b.N creates are issued open loop, one every 500 µs (2,000/s), each timed from its
// scheduled moment, so a stalled writer counts. It reports the creates' p50 and p99 in ms and
// the transitions written per second beside them.
func BenchmarkCreateLatencyBesideTransitions(b *testing.B) {
	benchCreateLatency(b, sqlite.Open)
}

func benchCreateLatency(b *testing.B, open func(context.Context, sqlite.Config) (*sqlite.Store, error)) {
	s, err := open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "jobs.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx, stop := context.WithCancel(context.Background())
	const workers, every = 256, 500 * time.Microsecond
	var moved atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		id := fmt.Sprintf("worker-%03d", w)
		if _, _, err := s.Create(ctx, job(id, time.Now())); err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			to := []messages.Status{messages.StatusProcessing, messages.StatusQueued}
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := s.Transition(ctx, id, pipeline.Transition{To: to[i%2]}); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
				moved.Add(1)
			}
		})
	}
	lat := make([]time.Duration, b.N)
	var creates sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	moved.Store(0)
	for i := range b.N {
		at := start.Add(time.Duration(i) * every)
		time.Sleep(time.Until(at))
		creates.Go(func() {
			if _, _, err := s.Create(context.Background(), job(fmt.Sprintf("job-%07d", i), at)); err != nil {
				b.Error(err)
			}
			lat[i] = time.Since(at)
		})
	}
	creates.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(moved.Load())/elapsed.Seconds(), "transitions/s")
}

func BenchmarkCreateLatencyBesideTransitionsWithoutSettle(b *testing.B) {
	benchCreateLatency(b, sqlite.OpenWithoutSettle)
}

func BenchmarkCreateLatencyBesideTransitionsSettlingAlways(b *testing.B) {
	benchCreateLatency(b, sqlite.OpenSettlingAlways)
}
