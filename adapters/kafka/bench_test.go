package kafka_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
	infkafka "github.com/infleet/infleet/adapters/kafka"
)

const benchInFlight = 256

// benchPublish stores n small messages on a fresh 3-partition topic, outside the timer.
func benchPublish(b *testing.B, bundle *testBundle, n int) string {
	b.Helper()
	topic := bundle.topic(b, 3)
	pub := newPublisher(b, bundle)
	batch := make([]*message.Message, 0, 1000)
	for i := range n {
		m := message.NewMessage(newID(), []byte("0123456789abcdef"))
		m.Metadata.Set(infkafka.MetaJobID, strconv.Itoa(i))
		batch = append(batch, m)
		if len(batch) == cap(batch) || i == n-1 {
			if err := pub.Publish(topic, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return topic
}

// BenchmarkConsumeAck consumes and acks b.N stored messages through the Subscriber, with
// benchInFlight handed out at once, each acked by its own goroutine as a router would.
// Compare with BenchmarkRawConsumeAck on the same kind of cluster and topic.
func BenchmarkConsumeAck(b *testing.B) {
	bundle := setup(b)
	topic := benchPublish(b, bundle, b.N)
	cfg := subscriberConfig(bundle, "bench_"+watermill.NewShortUUID())
	cfg.MaxInFlight = benchInFlight
	cfg.CommitInterval = time.Second
	sub := newSubscriber(b, cfg)
	deliverytest.BenchConsumeAck(b, sub, topic)
}

// BenchmarkRawConsumeAck does the same with a bare kafka-go consumer-group Reader:
// FetchMessage and CommitMessages in one loop, commits batched every second by the Reader.
// It has no checkpointing: it commits whatever it fetched, in order, one at a time.
func BenchmarkRawConsumeAck(b *testing.B) {
	bundle := setup(b)
	topic := benchPublish(b, bundle, b.N)
	r := newRawReader(b, bundle, topic)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// newRawReader returns a bare kafka-go consumer-group Reader of topic in a fresh group, with
// the subscriber's bench settings (in flight, heartbeats, commits batched every second),
// closed at cleanup.
func newRawReader(b *testing.B, bundle *testBundle, topic string) *kafkago.Reader {
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           bundle.brokers,
		GroupID:           "raw_" + watermill.NewShortUUID(),
		Topic:             topic,
		StartOffset:       kafkago.FirstOffset,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           100 * time.Millisecond,
		QueueCapacity:     benchInFlight,
		HeartbeatInterval: 200 * time.Millisecond,
		CommitInterval:    time.Second,
	})
	b.Cleanup(func() { _ = r.Close() })
	return r
}

// BenchmarkRawHandOffConsumeAck is BenchmarkRawConsumeAck shaped like a Watermill consumer:
// one goroutine fetches and hands each message over an unbuffered channel, and each is
// committed by its own goroutine. Against it, BenchmarkConsumeAck shows the adapter's own cost
// (checkpointing, the Watermill message, waiting for its answer) apart from the cost of that
// shape.
func BenchmarkRawHandOffConsumeAck(b *testing.B) {
	bundle := setup(b)
	topic := benchPublish(b, bundle, b.N)
	r := newRawReader(b, bundle, topic)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan kafkago.Message)
	go func() {
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				return
			}
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	b.ResetTimer()
	for range b.N {
		m := <-ch
		go func() { _ = r.CommitMessages(ctx, m) }()
	}
	b.StopTimer()
}

// BenchmarkPublish writes small messages one Publish call each (several calls at once, as
// handlers do) and 100 per call.
func BenchmarkPublish(b *testing.B) {
	for _, per := range []int{1, 100} {
		b.Run("per_call="+strconv.Itoa(per), func(b *testing.B) {
			bundle := setup(b)
			topic := bundle.topic(b, 3)
			pub := newPublisher(b, bundle)
			b.ResetTimer()
			if per == 1 {
				b.SetParallelism(64)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := pub.Publish(topic, message.NewMessage(newID(), []byte("0123456789abcdef"))); err != nil {
							b.Error(err)
							return
						}
					}
				})
				return
			}
			batch := make([]*message.Message, 0, per)
			for i := range b.N {
				batch = append(batch, message.NewMessage(newID(), []byte("0123456789abcdef")))
				if len(batch) == per || i == b.N-1 {
					if err := pub.Publish(topic, batch...); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		})
	}
}
