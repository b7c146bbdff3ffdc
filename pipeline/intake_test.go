package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// deliveryOf turns a queued message back into what a transport hands the worker.
func deliveryOf(msg *message.Message) pipeline.Delivery {
	md := make(map[string]string, len(msg.Metadata))
	for k, v := range msg.Metadata {
		md[k] = v
	}
	return pipeline.Delivery{MessageID: msg.UUID, Payload: msg.Payload, Metadata: md}
}

func TestServiceSubmitFinishesAfterTheCallerLeaves(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	msgs, err := b.pubsub.Subscribe(context.Background(), testTopics.Normal)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client is gone before intake starts
	rec, created, err := b.svc.Submit(ctx, messages.Job{Task: "summarize", Input: messages.Input{Text: "x"}}, pipeline.SubmitOptions{})
	if err != nil || !created {
		t.Fatalf("submit with a cancelled context: %v created=%v", err, created)
	}
	msg := receive(t, msgs)
	if msg.Metadata.Get(messages.MetaJobID) != rec.JobID {
		t.Fatalf("queued %s, recorded %s", msg.Metadata.Get(messages.MetaJobID), rec.JobID)
	}
	if got := getRecord(t, b, rec.JobID); got.Status != messages.StatusQueued {
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
	b := setup(t, nil)
	ctx := context.Background()
	msgs, err := b.pubsub.Subscribe(ctx, testTopics.Normal)
	if err != nil {
		t.Fatal(err)
	}
	broken, err := pipeline.NewService(pipeline.ServiceConfig{
		Store: downCreates{b.store}, Results: b.results, Publisher: b.pubsub, Topics: testTopics,
		IntakeTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	job := messages.Job{Task: "summarize", Input: messages.Input{Text: "x"}, IdempotencyKey: "k-lost"}
	if _, _, err := broken.Submit(ctx, job, pipeline.SubmitOptions{Tenant: "acme"}); !errors.Is(err, pipeline.ErrUnavailable) {
		t.Fatalf("submit with the store down: %v, want ErrUnavailable", err)
	}
	msg := receive(t, msgs)
	id := msg.Metadata.Get(messages.MetaJobID)
	if out := b.worker.Process(ctx, deliveryOf(msg)); out.Retry {
		t.Fatalf("outcome %+v", out)
	}
	rec := getRecord(t, b, id)
	if rec.Status != messages.StatusCompleted || rec.Tenant != "acme" || rec.IdempotencyKey != "k-lost" || rec.Attempts != 1 {
		t.Fatalf("record written by the worker: %+v", rec)
	}

	again, created, err := b.svc.Submit(ctx, job, pipeline.SubmitOptions{Tenant: "acme"})
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
	plain, err := pipeline.NewService(pipeline.ServiceConfig{
		Store: struct{ pipeline.JobStore }{b.store}, Results: b.results, Publisher: b.pubsub, Topics: testTopics,
	})
	if err != nil {
		t.Fatal(err)
	}
	again, created, err = plain.Submit(ctx, job, pipeline.SubmitOptions{Tenant: "acme"})
	if err != nil || created || again.JobID != id {
		t.Fatalf("retry on the key without a lookup: %v created=%v id %s, want %s", err, created, again.JobID, id)
	}
	spare := receive(t, msgs)
	if spare.Metadata.Get(messages.MetaJobID) == id {
		t.Fatal("the retry re-queued the first job")
	}
	if out := b.worker.Process(ctx, deliveryOf(spare)); out.Retry {
		t.Fatalf("spare outcome %+v", out)
	}
	if _, err := b.store.Get(ctx, spare.Metadata.Get(messages.MetaJobID)); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("the spare made a record: %v", err)
	}
	if n := b.model.calls.Load(); n != 1 {
		t.Fatalf("model calls %d, want 1", n)
	}
}

// A worker may take the message before intake writes the record; intake then finds the
// record the worker wrote and still answers that the job was created.
func TestServiceSubmitAfterTheWorkerWroteTheRecord(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	job := textJob("raced")
	if out := b.worker.Process(ctx, jobDelivery(t, job)); out.Retry {
		t.Fatalf("outcome %+v", out)
	}
	rec, created, err := b.svc.Submit(ctx, job, pipeline.SubmitOptions{})
	if err != nil || !created || rec.JobID != "raced" {
		t.Fatalf("submit: %v created=%v %+v", err, created, rec)
	}
}
