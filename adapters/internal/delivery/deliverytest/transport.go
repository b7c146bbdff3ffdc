package deliverytest

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Subscribe subscribes sub to topic, failing t if it cannot.
func Subscribe(t testing.TB, sub message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	return ch
}

// PublishN publishes n messages with payload "x" on topic in one call and returns them.
func PublishN(t testing.TB, pub message.Publisher, topic string, n int) []*message.Message {
	t.Helper()
	msgs := newMessages(n)
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return msgs
}

// Receive waits up to timeout for one message from ch.
func Receive(t testing.TB, ch <-chan *message.Message, timeout time.Duration) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("messages channel closed")
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %s", timeout)
	}
	return nil
}

// NoMessage fails if a message arrives on ch within d.
func NoMessage(t testing.TB, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-ch:
		if ok {
			t.Fatalf("unexpected message %s", m.UUID)
		}
	case <-time.After(d):
	}
}

// BenchConsumeAck times taking b.N messages from sub's subscription to topic, each acked on a
// goroutine of its own, then closes sub untimed. Transports' consume benchmarks share it so that
// they measure alike.
func BenchConsumeAck(b *testing.B, sub message.Subscriber, topic string) {
	b.ResetTimer()
	ch := Subscribe(b, sub, topic)
	for range b.N {
		m := <-ch
		go m.Ack()
	}
	b.StopTimer()
	_ = sub.Close()
}
