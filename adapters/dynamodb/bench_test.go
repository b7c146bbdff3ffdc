package dynamodb_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// withAndWithoutCounters runs bench twice, on a store that counts each job for JobStats (as
// every store does) and on one that does not, so that the counters' cost shows side by side.
func withAndWithoutCounters(b *testing.B, retention time.Duration, bench func(*testing.B, *dynamodb.Store)) {
	for _, counters := range []bool{false, true} {
		b.Run(fmt.Sprintf("counters=%v", counters), func(b *testing.B) {
			s, _ := setup(b, retention)
			if !counters {
				dynamodb.DisableStatsCounters(s)
			}
			bench(b, s)
			_ = s.Close()
			b.ReportMetric(float64(dynamodb.StatsWrites(s))/float64(b.N), "counter-writes/job")
		})
	}
}

// BenchmarkCreateTransitionParallel runs, per op, the three writes of one job's life: Create
// (with an idempotency key: two conditional writes), QUEUED → PROCESSING and PROCESSING →
// COMPLETED (a read and a conditional write each), from many goroutines at once (32 per CPU, as
// a worker pool runs many jobs per core), with and without the JobStats counters (five more
// UpdateItem calls per job, two of them at once with another). It reports jobs/s. Against
// dynalite the figure is the emulator's (one Node.js process on LevelDB), not DynamoDB's.
func BenchmarkCreateTransitionParallel(b *testing.B) {
	withAndWithoutCounters(b, time.Hour, func(b *testing.B, s *dynamodb.Store) {
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
	})
}

// BenchmarkCreateTransitionSerial is one job's life at a time: the latency of the five round
// trips (claim, write, then read + write twice), and with the counters of JobStats the
// UpdateItem calls after each write (two at once after Create and after the completion).
func BenchmarkCreateTransitionSerial(b *testing.B) {
	withAndWithoutCounters(b, 0, func(b *testing.B, s *dynamodb.Store) {
		ctx := context.Background()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			id := fmt.Sprintf("job-%09d", i)
			if _, _, err := s.Create(ctx, job(id, time.Now())); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusCompleted}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkList reads pages of 50 from 500 jobs, unfiltered and by tenant.
func BenchmarkList(b *testing.B) {
	s, _ := setup(b, 0)
	ctx := context.Background()
	now := time.Now()
	for i := range 500 {
		rec := job(fmt.Sprintf("job-%04d", i), now.Add(time.Duration(i)*time.Millisecond))
		rec.Tenant = []string{"acme", "globex"}[i%2]
		if _, _, err := s.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []pipeline.ListQuery{{}, {Tenant: "globex"}, {Status: messages.StatusQueued}} {
		b.Run(fmt.Sprintf("tenant=%q,status=%q", q.Tenant, q.Status), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				recs, _, err := s.List(ctx, q)
				if err != nil || len(recs) != 50 {
					b.Fatalf("List = %d jobs, %v", len(recs), err)
				}
			}
		})
	}
}
