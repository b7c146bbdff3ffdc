package kafka_test

import (
	"context"
	"testing"
	"time"

	infkafka "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/messages"
)

// waitDepth waits until the group behind sub has committed everything on topic.
func waitDepth(t *testing.T, sub *infkafka.Subscriber, topic string, want int64) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	var got int64
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		d, err := sub.QueueDepth(ctx, topic)
		cancel()
		if err == nil && d == want {
			return
		}
		got = d
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("depth of %s stayed %d, want %d", topic, got, want)
}

// TestNackWithDelayMovesThePartitionOn nacks the first message of a one-partition topic with
// a delay: the later messages are processed and committed meanwhile (the partition's commit
// point passes the nacked one, which waits on the retry topic), and the nacked message comes
// back, not before its delay, with its UUID and metadata.
func TestNackWithDelayMovesThePartitionOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 1)
	pub := newPublisher(t, b)
	sent := publishN(t, pub, topic, 3)
	sub := newSubscriber(t, subscriberConfig(b, newGroup()))
	ch := subscribe(t, sub, topic)

	first := receive(t, ch, waitLong)
	if first.UUID != sent[0].UUID {
		t.Fatalf("got %s first; want %s", first.UUID, sent[0].UUID)
	}
	const delay = time.Second
	first.Metadata.Set(messages.MetaNackDelay, delay.String())
	nackedAt := time.Now()
	first.Nack()
	for i := 1; i < 3; i++ {
		m := receive(t, ch, waitLong)
		if m.UUID != sent[i].UUID {
			t.Fatalf("got %s; want %s (later messages are processed while the first waits)", m.UUID, sent[i].UUID)
		}
		m.Ack()
	}
	// Everything fetched so far is committed although the first message is not done: it
	// lives on the retry topic now.
	waitDepth(t, sub, topic, 0)

	again := receive(t, ch, waitLong)
	if again.UUID != first.UUID {
		t.Fatalf("got %s; want the nacked %s back", again.UUID, first.UUID)
	}
	if waited := time.Since(nackedAt); waited < delay {
		t.Fatalf("the nacked message came back after %s, before its delay of %s", waited, delay)
	}
	if again.Metadata.Get(infkafka.HeaderRetryTopic) != "" || again.Metadata.Get(infkafka.HeaderRetryNotBefore) != "" {
		t.Fatalf("retry headers leaked into the redelivered message: %v", again.Metadata)
	}
	again.Ack()
	waitDepth(t, sub, topic, 0)
	waitDepth(t, sub, infkafka.RetryTopic(topic), 0)
}

// TestRetrySurvivesRestart nacks a message with a delay and closes the subscriber before the
// delay ends; a new subscriber of the group delivers it once due.
func TestRetrySurvivesRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 2)
	pub := newPublisher(t, b)
	sent := publishN(t, pub, topic, 1)
	group := newGroup()
	sub1 := newSubscriber(t, subscriberConfig(b, group))
	ch := subscribe(t, sub1, topic)
	m := receive(t, ch, waitLong)
	m.Metadata.Set(messages.MetaNackDelay, "1500ms")
	m.Nack()
	waitDepth(t, sub1, topic, 0) // moved to the retry topic and committed
	if err := sub1.Close(); err != nil {
		t.Fatal(err)
	}

	sub2 := newSubscriber(t, subscriberConfig(b, group))
	ch2 := subscribe(t, sub2, topic)
	again := receive(t, ch2, waitLong)
	if again.UUID != sent[0].UUID {
		t.Fatalf("got %s; want %s back after the restart", again.UUID, sent[0].UUID)
	}
	again.Ack()
	noMessage(t, ch2, 500*time.Millisecond)
}

// TestMemoryRetriesWithoutRetryTopic checks the fallback: with no retry topic a nacked
// message still comes back (from memory).
func TestMemoryRetriesWithoutRetryTopic(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 1)
	pub := newPublisher(t, b)
	sent := publishN(t, pub, topic, 1)
	cfg := subscriberConfig(b, newGroup())
	cfg.CreateMissingTopics = false
	sub := newSubscriber(t, cfg)
	ch := subscribe(t, sub, topic)
	m := receive(t, ch, waitLong)
	m.Metadata.Set(messages.MetaNackDelay, "100ms")
	m.Nack()
	if again := receive(t, ch, waitLong); again.UUID != sent[0].UUID {
		t.Fatalf("got %s; want %s again", again.UUID, sent[0].UUID)
	}
}
