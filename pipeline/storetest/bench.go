package storetest

import (
	"context"
	"fmt"
	"sync"
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
// It runs three times, as sub-benchmarks: completion=returned, the COMPLETED write returning
// the record; completion=unreturned (Transition.Unreturned); and completion=grouped, the write
// as workers make it (Unreturned and Grouped), handed off as a worker does once the job has
// given up its place: each goroutine goes on with its next job while up to 4 of its
// completions are being written.
func BenchLifecycle(b *testing.B, s pipeline.JobStore, newJob func(id string, created time.Time) messages.JobRecord) {
	if newJob == nil {
		newJob = queued
	}
	var seq atomic.Int64
	usage := &messages.Usage{InputTokens: 120, OutputTokens: 48}
	for _, c := range []struct {
		name       string
		completion completionKind
	}{{"completion=returned", returned}, {"completion=unreturned", unreturned}, {"completion=grouped", grouped}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				var pending sync.WaitGroup
				defer pending.Wait()
				places := make(chan struct{}, 4) // completions of this goroutine being written
				for pb.Next() {
					id := fmt.Sprintf("job-%09d", seq.Add(1))
					complete, err := claimed(ctx, s, newJob(id, time.Now()), usage, c.completion)
					if err != nil {
						b.Error(err)
						return
					}
					if c.completion != grouped {
						if err := complete(); err != nil {
							b.Error(err)
							return
						}
						continue
					}
					places <- struct{}{}
					pending.Go(func() {
						defer func() { <-places }()
						if err := complete(); err != nil {
							b.Error(err)
						}
					})
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// completionKind is how BenchLifecycle writes a job's COMPLETED.
type completionKind int

const (
	returned   completionKind = iota // the write returns the record
	unreturned                       // Transition.Unreturned
	grouped                          // Transition.Unreturned and Grouped, as a worker writes it
)

// claimed creates rec and moves it to PROCESSING, and returns the write that moves it on to
// COMPLETED with usage.
func claimed(ctx context.Context, s pipeline.JobStore, rec messages.JobRecord, usage *messages.Usage, kind completionKind) (func() error, error) {
	id := rec.JobID
	if _, _, err := s.Create(ctx, rec); err != nil {
		return nil, err
	}
	if _, err := s.Transition(ctx, id, pipeline.Transition{
		From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1, Model: "fast",
	}); err != nil {
		return nil, err
	}
	return func() error {
		_, err := s.Transition(ctx, id, pipeline.Transition{
			From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted,
			Usage: usage, ResultURL: messages.ResultPath(id), Unreturned: kind != returned, Grouped: kind == grouped,
		})
		return err
	}, nil
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
