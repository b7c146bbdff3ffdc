package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
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

// A first delivery is archived with its message's own body, the bytes the decoder read, not
// the job encoded again; what the decoder took from the metadata (job_id, priority) is in
// the entry, and a replay of the entry decodes to the same job.
func TestWorkerArchivesTheMessageBodyAsSent(t *testing.T) {
	t.Parallel()
	var a *ops.Archive
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		var err error
		a, err = ops.NewArchive(ops.ArchiveConfig{Store: c.Results, Window: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		c.Archive = a
		c.ClaimAfter = time.Minute // a first delivery runs unread, its record taken from the message
	})
	payload := []byte(`{"input":{"text":"The quick brown fox."},  "task":"summarize"}`)
	d := worker.Delivery{MessageID: "m-raw", Payload: payload,
		Metadata: map[string]string{messages.MetaJobID: "raw1", messages.MetaPriority: string(messages.PriorityHigh),
			messages.MetaDeliveryCount: "1"}}
	want, err := worker.DecodeJob(d)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan worker.Outcome)
	go func() { done <- b.Worker.Process(context.Background(), d) }()
	waitFlush(t, a, done, func(out worker.Outcome) {
		if out.Retry {
			t.Fatalf("outcome %+v, want ack", out)
		}
	})
	var entries []ops.ArchiveEntry
	now := time.Now()
	if err := ops.ScanArchive(context.Background(), b.Results, now.Add(-time.Hour), now.Add(time.Hour), func(e ops.ArchiveEntry) bool {
		entries = append(entries, e)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("archive holds %d entries, want 1", len(entries))
	}
	e := entries[0]
	if string(e.Body) != string(payload) || e.JobID != "raw1" || e.Priority != messages.PriorityHigh ||
		e.Metadata[messages.MetaPriority] != string(messages.PriorityHigh) {
		t.Fatalf("archived %s job %s priority %s metadata %v, want the payload as sent, raw1, high", e.Body, e.JobID, e.Priority, e.Metadata)
	}
	// What a replay publishes for the entry (pipeline/ops's publishReplay) decodes to the job.
	var job messages.Job
	if err := json.Unmarshal(e.Body, &job); err != nil {
		t.Fatal(err)
	}
	job.JobID, job.ReplayName = e.JobID, "r1"
	body, _ := json.Marshal(job)
	md := map[string]string{messages.MetaReplayName: "r1"}
	maps.Copy(md, e.Metadata)
	got, err := worker.DecodeJob(worker.Delivery{MessageID: "r1/raw1", Payload: body, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	got[0].Body, got[0].ReplayName, want[0].Body = nil, "", nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed job %+v, want %+v", got[0], want[0])
	}
}
