package nats_test

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
	infnats "github.com/infleet/infleet/adapters/nats"
)

const benchInFlight = 256

// benchPublish stores b.N small messages on a fresh topic, outside the timer.
func benchPublish(b *testing.B, bundle *testBundle, topic string) {
	b.Helper()
	pub := newPublisher(b, bundle.nc)
	batch := make([]*message.Message, 0, 1000)
	for i := range b.N {
		batch = append(batch, message.NewMessage(newID(), []byte("0123456789abcdef")))
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := pub.Publish(topic, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkConsumeAck consumes and acks b.N stored messages through the Subscriber, with
// benchInFlight handed out at once, each acked by its own goroutine as a router would.
func BenchmarkConsumeAck(b *testing.B) {
	for _, confirm := range []bool{false, true} {
		name := "ack=async"
		if confirm {
			name = "ack=confirmed"
		}
		b.Run(name, func(b *testing.B) {
			bundle := setup(b)
			topic := "bench.adapter"
			benchPublish(b, bundle, topic)
			sub := newSubscriber(b, infnats.SubscriberConfig{Conn: bundle.nc, MaxInFlight: benchInFlight, ConfirmAcks: confirm})
			deliverytest.BenchConsumeAck(b, sub, topic)
		})
	}
}

// BenchmarkRawConsumeAck does the same with nats.go's own jetstream Consume on the same kind of
// consumer, bounded to benchInFlight unacknowledged messages by the consumer itself.
func BenchmarkRawConsumeAck(b *testing.B) {
	bundle := setup(b)
	topic := "bench.raw"
	benchPublish(b, bundle, topic)
	js, err := jetstream.New(bundle.nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cons, err := js.CreateOrUpdateConsumer(ctx, infnats.StreamName(topic), jetstream.ConsumerConfig{
		Durable: "raw", FilterSubject: topic, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, MaxAckPending: benchInFlight,
	})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	b.ResetTimer()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		go func() {
			_ = m.Ack()
			if n.Add(1) == int64(b.N) {
				close(done)
			}
		}()
	}, jetstream.PullMaxMessages(benchInFlight))
	if err != nil {
		b.Fatal(err)
	}
	<-done
	b.StopTimer()
	cc.Stop()
}

// BenchmarkPublish stores small messages one Publish call each, and 100 per call (sent
// asynchronously, acknowledgements awaited together), from one goroutine; parallel is one
// message per call from 32 goroutines per CPU, as an ingress's requests publish.
func BenchmarkPublish(b *testing.B) {
	b.Run("parallel", func(b *testing.B) {
		bundle := setup(b)
		pub := newPublisher(b, bundle.nc)
		topic := "bench.publish"
		if err := infnats.EnsureStreams(context.Background(), bundle.nc, topic); err != nil {
			b.Fatal(err)
		}
		body := bytes.Repeat([]byte("0123456789abcdef"), 6)
		b.SetParallelism(32)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pub.Publish(topic, message.NewMessage(newID(), body)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, per := range []int{1, 100} {
		b.Run("per_call="+strconv.Itoa(per), func(b *testing.B) {
			bundle := setup(b)
			pub := newPublisher(b, bundle.nc)
			topic := "bench.publish"
			if err := infnats.EnsureStreams(context.Background(), bundle.nc, topic); err != nil {
				b.Fatal(err)
			}
			batch := make([]*message.Message, 0, per)
			b.ResetTimer()
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
