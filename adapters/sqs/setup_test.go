package sqs_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
	"github.com/infleet/infleet/adapters/sqs"
)

// testBundle is an SQS client on the emulator started by .ci/peers/with-aws.sh.
type testBundle struct {
	client *awssqs.Client
}

// setup returns a client on INFLEET_TEST_AWS_ENDPOINT, or skips the test when it is unset.
func setup(t testing.TB) *testBundle {
	t.Helper()
	return &testBundle{client: sqs.NewTestClient(t)}
}

func newName(prefix string) string { return prefix + "-" + watermill.NewShortUUID() }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// queues creates a fresh work queue with a fresh dead-letter queue and returns both names.
func (b *testBundle) queues(t testing.TB, maxReceive int) (queue, dead string) {
	t.Helper()
	queue, dead = newName("q"), newName("dlq")
	err := sqs.EnsureQueues(ctxT(t), b.client, sqs.QueueSpec{Queues: []string{queue}, DeadLetterQueue: dead, MaxReceiveCount: maxReceive})
	if err != nil {
		t.Fatalf("ensure queues: %v", err)
	}
	return queue, dead
}

func newPublisher(t testing.TB, b *testBundle) *sqs.Publisher {
	t.Helper()
	pub, err := sqs.NewPublisher(sqs.PublisherConfig{Client: b.client})
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// subscriberConfig is tuned for tests: short long polls and close.
func subscriberConfig(b *testBundle) sqs.SubscriberConfig {
	return sqs.SubscriberConfig{
		Client:            b.client,
		VisibilityTimeout: 10 * time.Second,
		WaitTime:          time.Second,
		CloseTimeout:      2 * time.Second,
	}
}

func newSubscriber(t testing.TB, cfg sqs.SubscriberConfig) *sqs.Subscriber {
	t.Helper()
	sub, err := sqs.NewSubscriber(cfg)
	if err != nil {
		t.Fatalf("new subscriber: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// The shared helpers of the transports' tests (deliverytest), by short names.
var (
	subscribe = deliverytest.Subscribe
	publishN  = deliverytest.PublishN
	receive   = deliverytest.Receive
	noMessage = deliverytest.NoMessage
)

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
