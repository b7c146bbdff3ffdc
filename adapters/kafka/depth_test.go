package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/infleet/infleet/pipeline"
)

// TestQueueDepth counts stored messages before the group subscribes and after it acked and
// committed some of them.
func TestQueueDepth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 3)
	pub := newPublisher(t, b)
	publishN(t, pub, topic, 10)
	cfg := subscriberConfig(b, newGroup())
	cfg.MaxInFlight = 4
	sub := newSubscriber(t, cfg)
	var reporter pipeline.DepthReporter = sub
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if n, err := reporter.QueueDepth(ctx, topic); err != nil || n != 10 {
		t.Fatalf("depth before subscribing = %d, %v; want 10", n, err)
	}
	ch := subscribe(t, sub, topic)
	for range 10 {
		receive(t, ch, waitLong).Ack()
	}
	deadline := time.Now().Add(waitLong)
	for {
		n, err := reporter.QueueDepth(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("depth still %d after every message was acked", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := reporter.QueueDepth(ctx, "no_such_topic_"+watermill.NewShortUUID()); err == nil {
		t.Error("depth of a missing topic: no error")
	}
}
