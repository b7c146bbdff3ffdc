package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	infkafka "github.com/infleet/infleet/adapters/kafka"
)

// TestEnsureTopicsIsIdempotent creates a topic twice and publishes to it.
func TestEnsureTopicsIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for range 2 {
		if err := infkafka.EnsureTopics(ctx, b.brokers, 2, 1, "jobs.high", "jobs.low"); err != nil {
			t.Fatal(err)
		}
	}
	if err := infkafka.EnsureTopics(ctx, b.brokers, 0, 1, "x"); err == nil {
		t.Error("zero partitions accepted")
	}
	pub := newPublisher(t, b)
	publishN(t, pub, "jobs.high", 5)
}

// TestPublishAfterClose checks that Close flushes and later Publish calls fail.
func TestPublishAfterClose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 1)
	pub, err := infkafka.NewPublisher(infkafka.PublisherConfig{Brokers: b.brokers, BatchTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, topic, 3)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := pub.Publish(topic, message.NewMessage(newID(), nil)); !errors.Is(err, infkafka.ErrPublisherClosed) {
		t.Fatalf("Publish after Close: %v; want ErrPublisherClosed", err)
	}
}
