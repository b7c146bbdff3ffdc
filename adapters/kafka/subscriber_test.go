package kafka_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	infkafka "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/messages"
)

const waitLong = 15 * time.Second

// TestLaterAckDoesNotCommitPastUnacked acks the second and third message of a partition but
// not the first, closes, and checks that the group delivers the first again.
func TestLaterAckDoesNotCommitPastUnacked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 1)
	pub := newPublisher(t, b)
	sent := publishN(t, pub, topic, 3)
	group := newGroup()

	cfg := subscriberConfig(b, group)
	cfg.CloseTimeout = 100 * time.Millisecond
	sub1 := newSubscriber(t, cfg)
	ch := subscribe(t, sub1, topic)
	got := map[string]*message.Message{}
	for range 3 {
		m := receive(t, ch, waitLong)
		got[m.UUID] = m
	}
	got[sent[1].UUID].Ack()
	got[sent[2].UUID].Ack()
	time.Sleep(3 * cfg.CommitInterval) // let commit ticks pass: none may move past offset 0
	if err := sub1.Close(); err != nil {
		t.Fatal(err)
	}

	// The commit point stayed at offset 0, so the group delivers all three again.
	sub2 := newSubscriber(t, subscriberConfig(b, group))
	ch2 := subscribe(t, sub2, topic)
	again := map[string]bool{}
	for range 3 {
		m := receive(t, ch2, waitLong)
		again[m.UUID] = true
		m.Ack()
	}
	if !again[sent[0].UUID] {
		t.Fatalf("the unacked message %s was not delivered again after restart (got %v)", sent[0].UUID, again)
	}
}

// TestAckedIsNotRedelivered acks everything, closes, and checks that a new member of the
// group gets nothing: the close committed the acked offsets.
func TestAckedIsNotRedelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 3)
	pub := newPublisher(t, b)
	publishN(t, pub, topic, 20)
	group := newGroup()

	cfg := subscriberConfig(b, group)
	cfg.CommitInterval = time.Hour // only the commit on close
	sub1 := newSubscriber(t, cfg)
	ch := subscribe(t, sub1, topic)
	for range 20 {
		receive(t, ch, waitLong).Ack()
	}
	if err := sub1.Close(); err != nil {
		t.Fatal(err)
	}
	sub2 := newSubscriber(t, subscriberConfig(b, group))
	ch2 := subscribe(t, sub2, topic)
	noMessage(t, ch2, 2*time.Second)
	next := publishN(t, pub, topic, 1)
	if m := receive(t, ch2, waitLong); m.UUID != next[0].UUID {
		t.Fatalf("got %s; want the newly published %s", m.UUID, next[0].UUID)
	}
}

// TestNackRedelivers nacks a message with a delay and expects it again, not before the delay.
func TestNackRedelivers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 1)
	pub := newPublisher(t, b)
	sent := publishN(t, pub, topic, 2)
	sub := newSubscriber(t, subscriberConfig(b, newGroup()))
	ch := subscribe(t, sub, topic)

	first := receive(t, ch, waitLong)
	second := receive(t, ch, waitLong)
	if first.UUID != sent[0].UUID || second.UUID != sent[1].UUID {
		t.Fatalf("got %s, %s; want %s, %s", first.UUID, second.UUID, sent[0].UUID, sent[1].UUID)
	}
	second.Ack()
	first.Metadata.Set(messages.MetaNackDelay, "300ms")
	first.Nack()
	noMessage(t, ch, 200*time.Millisecond)
	again := receive(t, ch, waitLong)
	if again.UUID != first.UUID {
		t.Fatalf("redelivered %s; want the nacked %s", again.UUID, first.UUID)
	}
	again.Ack()
}

// TestRecordShape checks the record a Publish writes: key = job id (else UUID), metadata as
// headers, the UUID in a header; and that the Subscriber turns it back into the message.
func TestRecordShape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 1)
	pub := newPublisher(t, b)
	withJob := message.NewMessage(newID(), []byte(`{"n":1}`))
	withJob.Metadata.Set(infkafka.MetaJobID, "job-42")
	withJob.Metadata.Set("tenant", "acme")
	withJob.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	plain := message.NewMessage(newID(), []byte("plain"))
	if err := pub.Publish(topic, withJob, plain); err != nil {
		t.Fatal(err)
	}

	raw := kafkago.NewReader(kafkago.ReaderConfig{Brokers: b.brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = raw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	wantKeys := []string{"job-42", plain.UUID}
	wantUUIDs := []string{withJob.UUID, plain.UUID}
	for i, want := range wantKeys {
		r, err := raw.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != want {
			t.Errorf("record %d key %q; want %q", i, r.Key, want)
		}
		h := slices.IndexFunc(r.Headers, func(h kafkago.Header) bool { return h.Key == infkafka.HeaderUUID })
		switch {
		case h < 0:
			t.Errorf("record %d has no %s header", i, infkafka.HeaderUUID)
		case string(r.Headers[h].Value) != wantUUIDs[i]:
			t.Errorf("record %d %s header %q; want %q", i, infkafka.HeaderUUID, r.Headers[h].Value, wantUUIDs[i])
		}
	}

	sub := newSubscriber(t, subscriberConfig(b, newGroup()))
	ch := subscribe(t, sub, topic)
	m := receive(t, ch, waitLong)
	defer m.Ack()
	if m.UUID != withJob.UUID || string(m.Payload) != string(withJob.Payload) {
		t.Fatalf("got %s %q; want %s %q", m.UUID, m.Payload, withJob.UUID, withJob.Payload)
	}
	for k, v := range withJob.Metadata {
		if m.Metadata.Get(k) != v {
			t.Errorf("metadata %s = %q; want %q", k, m.Metadata.Get(k), v)
		}
	}
	if m.Metadata.Get(infkafka.MetaPartition) != "0" || m.Metadata.Get(infkafka.MetaOffset) != "0" {
		t.Errorf("partition/offset metadata %q/%q; want 0/0", m.Metadata.Get(infkafka.MetaPartition), m.Metadata.Get(infkafka.MetaOffset))
	}
	receive(t, ch, waitLong).Ack()
}

// TestConcurrentHandOut checks that a subscription hands out several messages before any is
// acked.
func TestConcurrentHandOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 1)
	pub := newPublisher(t, b)
	publishN(t, pub, topic, 10)
	cfg := subscriberConfig(b, newGroup())
	cfg.MaxInFlight = 5
	sub := newSubscriber(t, cfg)
	ch := subscribe(t, sub, topic)
	held := make([]*message.Message, 0, 5)
	for range 5 {
		held = append(held, receive(t, ch, waitLong))
	}
	noMessage(t, ch, 300*time.Millisecond) // MaxInFlight reached
	for _, m := range held {
		m.Ack()
	}
	for range 5 {
		receive(t, ch, waitLong).Ack()
	}
}

// TestRebalanceLosesNothing has a member leave the group while it holds unacked messages;
// the other member gets every message not acked by the first.
func TestRebalanceLosesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 3)
	pub := newPublisher(t, b)
	sent := publishN(t, pub, topic, 60)
	group := newGroup()

	cfg := subscriberConfig(b, group)
	cfg.CloseTimeout = 100 * time.Millisecond
	sub1 := newSubscriber(t, cfg)
	ch1 := subscribe(t, sub1, topic)
	acked := map[string]bool{}
	for i := range 30 {
		m := receive(t, ch1, waitLong)
		if i%3 != 0 { // leave every third one unanswered
			m.Ack()
			acked[m.UUID] = true
		}
	}
	sub2 := newSubscriber(t, subscriberConfig(b, group))
	ch2 := subscribe(t, sub2, topic)
	if err := sub1.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for len(acked) < len(sent) {
		select {
		case m := <-ch2:
			m.Ack()
			acked[m.UUID] = true
		case <-deadline:
			t.Fatalf("%d of %d messages acked after the first member left", len(acked), len(sent))
		}
	}
	for _, m := range sent {
		if !acked[m.UUID] {
			t.Errorf("message %s never delivered", m.UUID)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := (infkafka.SubscriberConfig{}).Validate(); err == nil {
		t.Error("subscriber config without brokers validated")
	}
	if err := (infkafka.PublisherConfig{Brokers: []string{"x:9092"}, Compression: "brotli"}).Validate(); err == nil {
		t.Error("unknown compression validated")
	}
	if err := (infkafka.PublisherConfig{Brokers: []string{"x:9092"}}).Validate(); err != nil {
		t.Errorf("minimal publisher config: %v", err)
	}
}
