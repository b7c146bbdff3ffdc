package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
	infkafka "github.com/infleet/infleet/adapters/kafka"
)

func newID() string { return watermill.NewUUID() }

// testBundle is an in-process Kafka cluster speaking the real protocol.
type testBundle struct {
	brokers []string
}

// setup starts a one-broker kfake cluster that stops at cleanup.
func setup(t testing.TB) *testBundle {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &testBundle{brokers: c.ListenAddrs()}
}

// topic creates a fresh topic with partitions partitions.
func (b *testBundle) topic(t testing.TB, partitions int) string {
	t.Helper()
	name := "topic_" + watermill.NewShortUUID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := infkafka.EnsureTopics(ctx, b.brokers, partitions, 1, name); err != nil {
		t.Fatal(err)
	}
	return name
}

func newPublisher(t testing.TB, b *testBundle) *infkafka.Publisher {
	t.Helper()
	pub, err := infkafka.NewPublisher(infkafka.PublisherConfig{Brokers: b.brokers})
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// subscriberConfig is tuned for tests: fast heartbeats, commits and close.
func subscriberConfig(b *testBundle, group string) infkafka.SubscriberConfig {
	return infkafka.SubscriberConfig{
		Brokers:             b.brokers,
		Group:               group,
		CommitInterval:      100 * time.Millisecond,
		MaxWait:             100 * time.Millisecond,
		HeartbeatInterval:   200 * time.Millisecond,
		SessionTimeout:      6 * time.Second,
		RebalanceTimeout:    3 * time.Second,
		CloseTimeout:        time.Second,
		CreateMissingTopics: true,
	}
}

// newGroup returns a fresh consumer group name.
func newGroup() string { return "g_" + watermill.NewShortUUID() }

// newSubscriber returns a subscriber closed at cleanup; a test may close it itself before.
func newSubscriber(t testing.TB, cfg infkafka.SubscriberConfig) *infkafka.Subscriber {
	t.Helper()
	sub, err := infkafka.NewSubscriber(cfg)
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
