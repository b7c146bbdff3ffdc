package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
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

func newSubscriber(t testing.TB, cfg infkafka.SubscriberConfig) *infkafka.Subscriber {
	t.Helper()
	sub, err := infkafka.NewSubscriber(cfg)
	if err != nil {
		t.Fatalf("new subscriber: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func subscribe(t testing.TB, sub *infkafka.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	return ch
}

// publishN publishes n messages with payloads "0".."n-1" on topic and returns them.
func publishN(t testing.TB, pub *infkafka.Publisher, topic string, n int) []*message.Message {
	t.Helper()
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(newID(), []byte("x"))
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return msgs
}

// receive waits up to timeout for one message (deliverytest.Receive).
func receive(t testing.TB, ch <-chan *message.Message, timeout time.Duration) *message.Message {
	t.Helper()
	return deliverytest.Receive(t, ch, timeout)
}

// noMessage fails if a message arrives within d (deliverytest.NoMessage).
func noMessage(t testing.TB, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	deliverytest.NoMessage(t, ch, d)
}
