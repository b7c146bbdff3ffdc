package sqs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infleet/infleet/adapters/sqs"
	"github.com/infleet/infleet/messages"
)

func TestEnsureQueuesIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	q1, q2, dead := newName("q"), newName("q"), newName("dlq")
	spec := sqs.QueueSpec{Queues: []string{q1, q2}, DeadLetterQueue: dead, MaxReceiveCount: 3, VisibilityTimeout: 45 * time.Second}
	for range 2 {
		if err := sqs.EnsureQueues(ctxT(t), b.client, spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := sqs.CheckQueues(ctxT(t), b.client, q1, q2, dead); err != nil {
		t.Fatal(err)
	}
	url, err := b.client.GetQueueUrl(ctxT(t), &awssqs.GetQueueUrlInput{QueueName: aws.String(q1)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := b.client.GetQueueAttributes(ctxT(t), &awssqs.GetQueueAttributesInput{QueueUrl: url.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if rp := attrs.Attributes["RedrivePolicy"]; !strings.Contains(rp, dead) || !strings.Contains(rp, `"3"`) && !strings.Contains(rp, `:3`) {
		t.Errorf("redrive policy %q", rp)
	}
	if vt := attrs.Attributes["VisibilityTimeout"]; vt != "45" {
		t.Errorf("visibility timeout %q", vt)
	}
}

func TestMissingQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	missing, other := newName("missing"), newName("missing")
	wantMsg := `SQS queue "` + missing + `" does not exist: run "infleet init" or create it`

	sub := newSubscriber(t, subscriberConfig(b))
	if _, err := sub.Subscribe(context.Background(), missing); err == nil || !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("subscribe: %v", err)
	}
	pub := newPublisher(t, b)
	if err := pub.Publish(missing, message.NewMessage(watermill.NewUUID(), []byte("x"))); err == nil || !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("publish: %v", err)
	}
	if _, err := sub.QueueDepth(ctxT(t), missing); err == nil || !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("depth: %v", err)
	}
	err := sqs.CheckQueues(ctxT(t), b.client, missing, other)
	if err == nil || !strings.Contains(err.Error(), `"`+missing+`"`) || !strings.Contains(err.Error(), `"`+other+`"`) || !strings.Contains(err.Error(), "infleet init") {
		t.Errorf("check queues: %v", err)
	}
	if err := sub.Check(ctxT(t)); err != nil {
		t.Errorf("check with no queue used: %v", err)
	}
}

func TestQueueDepth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	queue, _ := b.queues(t, 0)
	sub := newSubscriber(t, subscriberConfig(b))
	if n, err := sub.QueueDepth(ctxT(t), queue); err != nil || n != 0 {
		t.Fatalf("empty queue: %d %v", n, err)
	}
	publishN(t, newPublisher(t, b), queue, 25)
	waitFor(t, 5*time.Second, "depth 25", func() bool {
		n, err := sub.QueueDepth(context.Background(), queue)
		return err == nil && n == 25
	})
	if err := sub.Check(ctxT(t)); err != nil {
		t.Fatalf("check: %v", err)
	}
}

// TestDeadLetterBox scans a dead-letter queue twice without losing anything, removes by id
// with and without a prior scan, and treats a missing id as removed.
func TestDeadLetterBox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, dead := b.queues(t, 0)
	pub := newPublisher(t, b)
	for i, job := range []string{"job-a", "job-b", "job-c"} {
		m := message.NewMessage(watermill.NewUUID(), []byte(job))
		m.Metadata.Set(messages.MetaJobID, job)
		m.Metadata.Set(messages.MetaDeadReason, "invalid_job: not a job")
		if err := pub.Publish(dead, m); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			time.Sleep(5 * time.Millisecond) // distinct SentTimestamps, for the order
		}
	}
	sub := newSubscriber(t, subscriberConfig(b))
	scan := func(sub *sqs.Subscriber) (ids, jobs []string) {
		t.Helper()
		err := sub.ScanDeadLetters(ctxT(t), dead, func(id string, payload []byte, md map[string]string) bool {
			if md[messages.MetaDeadReason] != "invalid_job: not a job" || md[messages.MetaJobID] != string(payload) {
				t.Errorf("dead letter %s: payload %q metadata %v", id, payload, md)
			}
			ids, jobs = append(ids, id), append(jobs, md[messages.MetaJobID])
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids, jobs
	}
	ids, jobs := scan(sub)
	if strings.Join(jobs, ",") != "job-a,job-b,job-c" {
		t.Fatalf("first scan: %v", jobs)
	}
	if _, again := scan(sub); strings.Join(again, ",") != "job-a,job-b,job-c" {
		t.Fatalf("second scan lost messages: %v", again)
	}
	// Stopping early is honoured.
	n := 0
	if err := sub.ScanDeadLetters(ctxT(t), dead, func(string, []byte, map[string]string) bool { n++; return false }); err != nil || n != 1 {
		t.Fatalf("early stop: %d calls, %v", n, err)
	}

	if err := sub.RemoveDeadLetter(ctxT(t), dead, ids[1]); err != nil {
		t.Fatal(err)
	}
	// A subscriber that never scanned finds the message by scanning.
	fresh := newSubscriber(t, subscriberConfig(b))
	if err := fresh.RemoveDeadLetter(ctxT(t), dead, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := sub.RemoveDeadLetter(ctxT(t), dead, "no-such-id"); err != nil {
		t.Fatalf("missing id: %v", err)
	}
	if _, left := scan(sub); strings.Join(left, ",") != "job-c" {
		t.Fatalf("after removing two: %v", left)
	}
	waitFor(t, 5*time.Second, "the scanned message visible again", func() bool {
		n, err := sub.QueueDepth(context.Background(), dead)
		return err == nil && n == 1
	})
}
