package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// BenchLifecycle runs, per op, the three writes of one job's life: Create of the record
// newJob makes, QUEUED → PROCESSING and PROCESSING → COMPLETED, from many goroutines at once
// (32 per CPU, as a worker pool runs many jobs per core). It reports jobs/s. newJob gets a
// fresh job id and the creation time; nil uses a QUEUED record with a tenant and a small spec.
// It runs twice, as sub-benchmarks: completion=returned, the COMPLETED write returning the
// record, and completion=unreturned, the write as workers make it (Transition.Unreturned).
func BenchLifecycle(b *testing.B, s pipeline.JobStore, newJob func(id string, created time.Time) messages.JobRecord) {
	if newJob == nil {
		newJob = queued
	}
	var seq atomic.Int64
	usage := &messages.Usage{InputTokens: 120, OutputTokens: 48}
	for _, c := range []struct {
		name       string
		unreturned bool
	}{{"completion=returned", false}, {"completion=unreturned", true}} {
		unreturned := c.unreturned
		b.Run(c.name, func(b *testing.B) {
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					id := fmt.Sprintf("job-%09d", seq.Add(1))
					if err := lifecycle(ctx, s, newJob(id, time.Now()), usage, unreturned); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// lifecycle creates rec and moves it through PROCESSING to COMPLETED with usage, the last
// write Unreturned when unreturned is set.
func lifecycle(ctx context.Context, s pipeline.JobStore, rec messages.JobRecord, usage *messages.Usage, unreturned bool) error {
	id := rec.JobID
	if _, _, err := s.Create(ctx, rec); err != nil {
		return err
	}
	if _, err := s.Transition(ctx, id, pipeline.Transition{
		From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1, Model: "fast",
	}); err != nil {
		return err
	}
	_, err := s.Transition(ctx, id, pipeline.Transition{
		From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted,
		Usage: usage, ResultURL: messages.ResultPath(id), Unreturned: unreturned,
	})
	return err
}

// BenchCancelledAmong is the read a worker process makes every workers.cancel_poll while it
// runs jobs: which of its 64 running jobs (workers.concurrency's default) were cancelled, in a
// store of total jobs, two of them cancelled. s must be a pipeline.CancelFinder.
func BenchCancelledAmong(b *testing.B, s pipeline.JobStore, total int) {
	finder, ok := s.(pipeline.CancelFinder)
	if !ok {
		b.Fatalf("%T is not a pipeline.CancelFinder", s)
	}
	ctx := context.Background()
	var ids []string
	every := max(total/64, 1)
	for i := range total {
		id := fmt.Sprintf("job-%05d", i)
		if _, _, err := s.Create(ctx, queued(id, time.Now())); err != nil {
			b.Fatal(err)
		}
		if i%every == 0 && len(ids) < 64 {
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
		got, err := finder.CancelledAmong(ctx, ids)
		if err != nil || len(got) != 2 {
			b.Fatalf("CancelledAmong = %v, %v; want 2 ids", got, err)
		}
	}
}
