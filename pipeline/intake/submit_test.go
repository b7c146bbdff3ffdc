package intake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/pipeline/worker"
)

// deliveryOf turns a queued message back into what a transport hands the worker.
func deliveryOf(msg *message.Message) worker.Delivery {
	md := make(map[string]string, len(msg.Metadata))
	for k, v := range msg.Metadata {
		md[k] = v
	}
	return worker.Delivery{MessageID: msg.UUID, Payload: msg.Payload, Metadata: md}
}

func TestServiceSubmitFinishesAfterTheCallerLeaves(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	msgs, err := b.PubSub.Subscribe(context.Background(), pipelinetest.Topics.Normal)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client is gone before intake starts
	rec, created, err := b.Service.Submit(ctx, messages.Job{Task: "summarize", Input: messages.Input{Text: "x"}}, intake.SubmitOptions{})
	if err != nil || !created {
		t.Fatalf("submit with a cancelled context: %v created=%v", err, created)
	}
	msg := pipelinetest.Receive(t, msgs)
	if msg.Metadata.Get(messages.MetaJobID) != rec.JobID {
		t.Fatalf("queued %s, recorded %s", msg.Metadata.Get(messages.MetaJobID), rec.JobID)
	}
	if got := b.Record(t, rec.JobID); got.Status != messages.StatusQueued {
		t.Fatalf("record %+v", got)
	}
}

// downCreates is a job store whose record writes fail, as a store that is down does.
type downCreates struct{ pipeline.JobStore }

func (downCreates) Create(context.Context, messages.JobRecord) (messages.JobRecord, bool, error) {
	return messages.JobRecord{}, false, errors.New("store unreachable")
}

// A record lost after the publish (the store failed, or the process died between the two) is
// written by the worker that takes the message, and a retry on the same idempotency key
// answers with that job instead of making a second one.
func TestServiceJobQueuedWithoutItsRecordRunsOnceAndKeepsItsKey(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	ctx := context.Background()
	msgs, err := b.PubSub.Subscribe(ctx, pipelinetest.Topics.Normal)
	if err != nil {
		t.Fatal(err)
	}
	broken, err := intake.New(intake.Config{
		Store: downCreates{b.Store}, Results: b.Results, Publisher: b.PubSub, Topics: pipelinetest.Topics,
		IntakeTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	job := messages.Job{Task: "summarize", Input: messages.Input{Text: "x"}, IdempotencyKey: "k-lost"}
	if _, _, err := broken.Submit(ctx, job, intake.SubmitOptions{Tenant: "acme"}); !errors.Is(err, pipeline.ErrUnavailable) {
		t.Fatalf("submit with the store down: %v, want ErrUnavailable", err)
	}
	msg := pipelinetest.Receive(t, msgs)
	id := msg.Metadata.Get(messages.MetaJobID)
	if out := b.Worker.Process(ctx, deliveryOf(msg)); out.Retry {
		t.Fatalf("outcome %+v", out)
	}
	rec := b.Record(t, id)
	if rec.Status != messages.StatusCompleted || rec.Tenant != "acme" || rec.IdempotencyKey != "k-lost" || rec.Attempts != 1 {
		t.Fatalf("record written by the worker: %+v", rec)
	}

	again, created, err := b.Service.Submit(ctx, job, intake.SubmitOptions{Tenant: "acme"})
	if err != nil || created || again.JobID != id {
		t.Fatalf("retry on the key: %v created=%v id %s, want %s", err, created, again.JobID, id)
	}
	select {
	case m := <-msgs:
		t.Fatalf("the retry queued a message for %s", m.Metadata.Get(messages.MetaJobID))
	case <-time.After(100 * time.Millisecond):
	}

	// A store that cannot look keys up: the retry's own message is a spare that the worker
	// drops, running nothing more.
	plain, err := intake.New(intake.Config{
		Store: struct{ pipeline.JobStore }{b.Store}, Results: b.Results, Publisher: b.PubSub, Topics: pipelinetest.Topics,
	})
	if err != nil {
		t.Fatal(err)
	}
	again, created, err = plain.Submit(ctx, job, intake.SubmitOptions{Tenant: "acme"})
	if err != nil || created || again.JobID != id {
		t.Fatalf("retry on the key without a lookup: %v created=%v id %s, want %s", err, created, again.JobID, id)
	}
	spare := pipelinetest.Receive(t, msgs)
	if spare.Metadata.Get(messages.MetaJobID) == id {
		t.Fatal("the retry re-queued the first job")
	}
	if out := b.Worker.Process(ctx, deliveryOf(spare)); out.Retry {
		t.Fatalf("spare outcome %+v", out)
	}
	if _, err := b.Store.Get(ctx, spare.Metadata.Get(messages.MetaJobID)); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("the spare made a record: %v", err)
	}
	if n := b.Model.Calls.Load(); n != 1 {
		t.Fatalf("model calls %d, want 1", n)
	}
}

// A worker may take the message before intake writes the record; intake then finds the
// record the worker wrote and still answers that the job was created.
func TestServiceSubmitAfterTheWorkerWroteTheRecord(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	ctx := context.Background()
	job := pipelinetest.TextJob("raced")
	if out := b.Worker.Process(ctx, pipelinetest.JobDelivery(t, job)); out.Retry {
		t.Fatalf("outcome %+v", out)
	}
	rec, created, err := b.Service.Submit(ctx, job, intake.SubmitOptions{})
	if err != nil || !created || rec.JobID != "raced" {
		t.Fatalf("submit: %v created=%v %+v", err, created, rec)
	}
}

func TestServiceSubmitIsIdempotentAndQueues(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	ctx := context.Background()
	msgs, err := b.PubSub.Subscribe(ctx, pipelinetest.Topics.High)
	if err != nil {
		t.Fatal(err)
	}
	job := messages.Job{Task: "summarize", Input: messages.Input{Text: "x"}, Priority: messages.PriorityHigh, IdempotencyKey: "k1"}
	first, created, err := b.Service.Submit(ctx, job, intake.SubmitOptions{Tenant: "acme", Traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	if err != nil || !created {
		t.Fatalf("submit: %v created=%v", err, created)
	}
	again, created, err := b.Service.Submit(ctx, job, intake.SubmitOptions{Tenant: "acme"})
	if err != nil || created || again.JobID != first.JobID {
		t.Fatalf("resubmit: %v created=%v id %s vs %s", err, created, again.JobID, first.JobID)
	}
	msg := pipelinetest.Receive(t, msgs)
	if msg.Metadata.Get(messages.MetaJobID) != first.JobID || msg.Metadata.Get(messages.MetaTenant) != "acme" ||
		msg.Metadata.Get(messages.MetaPriority) != "high" || msg.Metadata.Get(messages.MetaTraceparent) == "" {
		t.Fatalf("metadata %v", msg.Metadata)
	}
	if _, err := b.Service.Get(ctx, first.JobID, "other"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("other tenant: %v, want ErrNotFound", err)
	}
}

func TestServiceSubmitLeavesNothingWhenQueueDown(t *testing.T) {
	t.Parallel()
	b := pipelinetest.Setup(t, nil)
	_ = b.PubSub.Close()
	job := messages.Job{JobID: "down", Task: "summarize", Input: messages.Input{Text: "x"}}
	if _, _, err := b.Service.Submit(context.Background(), job, intake.SubmitOptions{}); !errors.Is(err, pipeline.ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	if _, err := b.Store.Get(context.Background(), "down"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("record left behind: %v", err)
	}
}
