package nats_test

import (
	"context"
	"testing"
	"time"

	infnats "github.com/infleet/infleet/adapters/nats"
)

func TestQueueDepthCountsWaitingMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if err := infnats.EnsureStreams(ctx, b.nc, "depth.t"); err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, b.nc)
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc, MaxInFlight: 1})
	publishN(t, pub, "depth.t", 5)
	if n, err := sub.QueueDepth(ctx, "depth.t"); err != nil || n != 5 {
		t.Fatalf("before subscribing: depth %d, %v; want 5", n, err)
	}
	ch := subscribe(t, sub, "depth.t")
	msg := receive(t, ch, 5*time.Second)
	msg.Ack()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := sub.QueueDepth(ctx, "depth.t")
		if err != nil {
			t.Fatal(err)
		}
		// One acked, at most one more held by the subscriber: 3 or 4 wait.
		if n == 3 || n == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("depth %d after one ack; want 3 or 4", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
