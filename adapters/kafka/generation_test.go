package kafka_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	infkafka "github.com/infleet/infleet/adapters/kafka"
)

// TestRevokedPartitionNotCommittedByOldOwner has a member hold the messages of both
// partitions unacked while a second member joins and takes one of them over; the second
// member processes that partition and more, and commits. Then the first member acks its
// stale messages of the moved partition and closes: the group's committed offset of that
// partition must not move back.
func TestRevokedPartitionNotCommittedByOldOwner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 2)
	group := newGroup()
	produceTo(t, b, topic, 0, 3)
	produceTo(t, b, topic, 1, 3)

	cfgA := subscriberConfig(b, group)
	cfgA.CloseTimeout = 100 * time.Millisecond
	subA := newSubscriber(t, cfgA)
	chA := subscribe(t, subA, topic)
	var heldA []*message.Message
	for range 6 {
		heldA = append(heldA, receive(t, chA, waitLong))
	}

	// A second member joins: the group gives it one partition, moved from the first.
	subB := newSubscriber(t, subscriberConfig(b, group))
	chB := subscribe(t, subB, topic)
	first := receive(t, chB, waitLong)
	first.Ack()
	moved, err := strconv.Atoi(first.Metadata.Get(infkafka.MetaPartition))
	if err != nil {
		t.Fatal(err)
	}
	produceTo(t, b, topic, moved, 3)
	for range 5 { // the other two old ones, then the three new ones
		m := receive(t, chB, waitLong)
		if p := m.Metadata.Get(infkafka.MetaPartition); p != strconv.Itoa(moved) {
			t.Fatalf("second member got partition %s; want only %d", p, moved)
		}
		m.Ack()
	}
	waitCommitted(t, b, group, topic, moved, 6)

	// The first member answers its stale messages of the moved partition, then leaves.
	for _, m := range heldA {
		m.Ack()
	}
	if err := subA.Close(); err != nil {
		t.Fatal(err)
	}
	if got := committedOffset(t, b, group, topic, moved); got != 6 {
		t.Fatalf("partition %d committed at %d after the old owner acked its stale messages; want 6 (the new owner's)", moved, got)
	}
}

// produceTo writes n records with fresh UUIDs to one partition of topic.
func produceTo(t testing.TB, b *testBundle, topic string, partition, n int) {
	t.Helper()
	w := &kafkago.Writer{
		Addr:         kafkago.TCP(b.brokers...),
		Balancer:     kafkago.BalancerFunc(func(kafkago.Message, ...int) int { return partition }),
		BatchTimeout: time.Millisecond,
		RequiredAcks: kafkago.RequireAll,
	}
	defer w.Close()
	recs := make([]kafkago.Message, n)
	for i := range recs {
		recs[i] = kafkago.Message{Topic: topic, Value: []byte("x"), Headers: []kafkago.Header{{Key: infkafka.HeaderUUID, Value: []byte(newID())}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := w.WriteMessages(ctx, recs...); err != nil {
		t.Fatalf("produce to partition %d: %v", partition, err)
	}
}

// committedOffset reads group's committed offset of one partition of topic (-1: none).
func committedOffset(t testing.TB, b *testBundle, group, topic string, partition int) int64 {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(b.brokers...), Timeout: 10 * time.Second}
	res, err := client.OffsetFetch(context.Background(), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {partition}}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("offset fetch: %v", res.Error)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == partition {
			if p.Error != nil {
				t.Fatalf("offset fetch of partition %d: %v", partition, p.Error)
			}
			return p.CommittedOffset
		}
	}
	return -1
}

// waitCommitted waits until group's committed offset of the partition reaches want.
func waitCommitted(t testing.TB, b *testBundle, group, topic string, partition int, want int64) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		got := committedOffset(t, b, group, topic, partition)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition %d committed at %d; want %d", partition, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
