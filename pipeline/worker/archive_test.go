package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
	"github.com/infleet/infleet/pipeline/worker"
)

// flakyBlobs fails its Puts while fail is set.
type flakyBlobs struct {
	pipeline.BlobStore
	fail atomic.Bool
}

func (s *flakyBlobs) Put(ctx context.Context, key string, data []byte) error {
	if s.fail.Load() {
		return errors.New("archive disk unplugged")
	}
	return s.BlobStore.Put(ctx, key, data)
}

func archived(t *testing.T, store pipeline.BlobStore) map[string]int {
	t.Helper()
	now := time.Now()
	got := map[string]int{}
	err := ops.ScanArchive(context.Background(), store, now.Add(-time.Hour), now.Add(time.Hour), func(e ops.ArchiveEntry) bool {
		got[e.JobID]++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestWorkerAcksOnlyOnceTheJobIsArchived(t *testing.T) {
	t.Parallel()
	blobs := &flakyBlobs{}
	var a *ops.Archive
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		blobs.BlobStore = c.Results
		var err error
		a, err = ops.NewArchive(ops.ArchiveConfig{Store: blobs, Window: time.Hour}) // written only when full
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		c.Archive = a
	})
	// The archive cannot be written: the job completes, but its message is not acknowledged,
	// and no attempt is charged for it.
	blobs.fail.Store(true)
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("a1"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if out := b.Worker.Process(ctx, d); !out.Retry {
		t.Fatalf("outcome %+v with the archive batch never written, want a retry", out)
	}
	a.Flush(context.Background()) // the write fails
	if got := archived(t, b.Results); got["a1"] != 0 {
		t.Fatalf("archive %v", got)
	}
	// A failed write: retried as an infrastructure failure.
	blobs.fail.Store(true)
	done := make(chan worker.Outcome)
	go func() { done <- b.Worker.Process(context.Background(), d) }()
	waitFlush(t, a, done, func(out worker.Outcome) {
		if !out.Retry || out.Reason != messages.ErrCodeInfrastructure {
			t.Fatalf("outcome %+v after a failed archive write, want an infrastructure retry", out)
		}
	})
	// The store is back: the redelivery archives the job and is acknowledged.
	blobs.fail.Store(false)
	go func() { done <- b.Worker.Process(context.Background(), d) }()
	waitFlush(t, a, done, func(out worker.Outcome) {
		if out.Retry {
			t.Fatalf("outcome %+v once the archive is written, want ack", out)
		}
	})
	if got := archived(t, b.Results); got["a1"] != 1 {
		t.Fatalf("archive %v, want a1 once", got)
	}
	rec := b.Record(t, "a1")
	if rec.Status != messages.StatusCompleted || rec.Attempts != 1 || b.Model.Calls.Load() != 1 {
		t.Fatalf("record %+v after %d model calls, want COMPLETED in one attempt and call", rec, b.Model.Calls.Load())
	}
}

// waitFlush flushes a until Process has returned its outcome, and checks it.
func waitFlush(t *testing.T, a *ops.Archive, done <-chan worker.Outcome, check func(worker.Outcome)) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		a.Flush(context.Background())
		select {
		case out := <-done:
			check(out)
			return
		case <-deadline:
			t.Fatal("Process did not return")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
