package deliverytest

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/internal/delivery"
	"github.com/infleet/infleet/messages"
)

// Harness opens queues of the transport under test for Run.
type Harness struct {
	// Open returns a fresh, empty queue whose fetched messages are leased for lease (where
	// the transport leases them): publish stores messages on it, and source returns another
	// consumer of it at each call (consumers share the queue's messages). Everything it
	// makes is cleaned up with t.
	Open func(t *testing.T, lease time.Duration) (publish func(t *testing.T, msgs ...*message.Message), source func(t *testing.T) delivery.Source)
	// Leases says that the transport leases fetched messages and its sources implement
	// delivery.Extender: a message fetched and never answered comes back after the lease.
	Leases bool
	// Lease is the lease the tests mostly use (default 1 s; a transport whose leases are whole
	// seconds needs at least that).
	Lease time.Duration
	// Wait bounds how long a test waits for a message that should come (default 10 s).
	Wait time.Duration
}

// Run is the engine's conformance suite: it runs engines on sources from h and checks the
// concurrency bound, acks, nacks with and without a delay, lease renewals while a message is
// held, the drain and the abandon of Close (an ack after Close ignored), the return of messages fetched while stopping,
// and the end of the subscription's context. Its tests run in parallel.
func Run(t *testing.T, h Harness) {
	if h.Lease == 0 {
		h.Lease = time.Second
	}
	if h.Wait == 0 {
		h.Wait = 10 * time.Second
	}
	tests := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"ConcurrencyBound", testConcurrencyBound},
		{"AckRemoves", testAckRemoves},
		{"NackWithDelay", testNackWithDelay},
		{"NackAtOnce", testNackAtOnce},
		{"RenewsLeaseWhileHeld", testRenewsLeaseWhileHeld},
		{"CloseDrains", testCloseDrains},
		{"CloseAbandons", testCloseAbandons},
		{"StopGivesBack", testStopGivesBack},
		{"ContextEnd", testContextEnd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, h)
		})
	}
}

// start runs an engine on src, closed at cleanup.
func start(t *testing.T, ctx context.Context, cfg delivery.Config, src delivery.Source) *delivery.Engine {
	t.Helper()
	e := delivery.Start(ctx, cfg, src)
	t.Cleanup(e.Close)
	return e
}

func newMessages(n int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("x"))
	}
	return msgs
}

// closeWithin closes e and fails if that takes longer than d.
func closeWithin(t *testing.T, e *delivery.Engine, d time.Duration) {
	t.Helper()
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(d):
		t.Fatalf("Close did not return within %s", d)
	}
}

// testConcurrencyBound: no more than MaxInFlight messages are handed out unanswered.
func testConcurrencyBound(t *testing.T, h Harness) {
	publish, source := h.Open(t, h.Lease)
	publish(t, newMessages(7)...)
	e := start(t, context.Background(), delivery.Config{MaxInFlight: 4, Lease: h.Lease}, source(t))
	var held []*message.Message
	for range 4 {
		held = append(held, Receive(t, e.Messages(), h.Wait))
	}
	NoMessage(t, e.Messages(), 300*time.Millisecond)
	for _, m := range held {
		m.Ack()
	}
	for range 3 {
		Receive(t, e.Messages(), h.Wait).Ack()
	}
}

// testAckRemoves: an acked message is not delivered again, to this consumer or another.
func testAckRemoves(t *testing.T, h Harness) {
	publish, source := h.Open(t, h.Lease)
	publish(t, newMessages(3)...)
	e := start(t, context.Background(), delivery.Config{MaxInFlight: 8, Lease: h.Lease}, source(t))
	for range 3 {
		Receive(t, e.Messages(), h.Wait).Ack()
	}
	closeWithin(t, e, h.Wait)
	other := start(t, context.Background(), delivery.Config{MaxInFlight: 8, Lease: h.Lease}, source(t))
	NoMessage(t, other.Messages(), 2*h.Lease+500*time.Millisecond)
}

// testNackWithDelay: a message nacked with messages.MetaNackDelay comes back, not before.
func testNackWithDelay(t *testing.T, h Harness) {
	publish, source := h.Open(t, h.Lease)
	publish(t, newMessages(1)...)
	e := start(t, context.Background(), delivery.Config{MaxInFlight: 8, Lease: h.Lease}, source(t))
	const delay = time.Second
	m := Receive(t, e.Messages(), h.Wait)
	m.Metadata.Set(messages.MetaNackDelay, delay.String())
	nacked := time.Now()
	m.Nack()
	again := Receive(t, e.Messages(), h.Wait+delay)
	defer again.Ack()
	if waited := time.Since(nacked); waited < delay-NackDelaySlack(delay) {
		t.Fatalf("redelivered after %s, before the %s nack delay", waited, delay)
	}
	if again.UUID != m.UUID {
		t.Fatalf("got %s, want the nacked %s", again.UUID, m.UUID)
	}
}

// testNackAtOnce: a message nacked without a delay comes back long before its lease ends.
func testNackAtOnce(t *testing.T, h Harness) {
	const lease = 30 * time.Second
	publish, source := h.Open(t, lease)
	publish(t, newMessages(1)...)
	e := start(t, context.Background(), delivery.Config{MaxInFlight: 8, Lease: lease}, source(t))
	m := Receive(t, e.Messages(), h.Wait)
	m.Nack()
	again := Receive(t, e.Messages(), h.Wait)
	defer again.Ack()
	if again.UUID != m.UUID {
		t.Fatalf("got %s, want the nacked %s", again.UUID, m.UUID)
	}
}

// testRenewsLeaseWhileHeld: a message held three times longer than its lease is not
// delivered to another consumer meanwhile.
func testRenewsLeaseWhileHeld(t *testing.T, h Harness) {
	if !h.Leases {
		t.Skip("the transport does not lease messages")
	}
	publish, source := h.Open(t, h.Lease)
	publish(t, newMessages(1)...)
	cfg := delivery.Config{MaxInFlight: 1, Lease: h.Lease}
	holder := start(t, context.Background(), cfg, source(t))
	held := Receive(t, holder.Messages(), h.Wait)
	other := start(t, context.Background(), cfg, source(t))
	NoMessage(t, other.Messages(), 3*h.Lease+h.Lease/2)
	held.Ack()
	NoMessage(t, other.Messages(), h.Lease+h.Lease/2)
}

// testCloseDrains: Close lets a held message finish within DrainTimeout, its context live.
func testCloseDrains(t *testing.T, h Harness) {
	publish, source := h.Open(t, h.Lease)
	publish(t, newMessages(1)...)
	e := start(t, context.Background(), delivery.Config{MaxInFlight: 8, Lease: h.Lease, DrainTimeout: time.Minute}, source(t))
	held := Receive(t, e.Messages(), h.Wait)
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-e.Stopping().Done():
	case <-time.After(h.Wait):
		t.Fatal("Close did not stop the engine")
	}
	time.Sleep(100 * time.Millisecond)
	if err := held.Context().Err(); err != nil {
		t.Fatalf("held message's context ended during the drain: %v", err)
	}
	select {
	case <-closed:
		t.Fatal("Close returned before the held message was answered")
	default:
	}
	held.Ack()
	select {
	case <-closed:
	case <-time.After(h.Wait):
		t.Fatal("Close did not return after the held message was acked")
	}
	if _, ok := <-e.Messages(); ok {
		t.Fatal("messages channel open after Close")
	}
}

// testCloseAbandons: Close cancels a held message's context, gives up on it after
// CloseTimeout, and the transport delivers it again.
func testCloseAbandons(t *testing.T, h Harness) {
	publish, source := h.Open(t, h.Lease)
	publish(t, newMessages(1)...)
	const closeTimeout = 200 * time.Millisecond
	e := start(t, context.Background(), delivery.Config{MaxInFlight: 8, Lease: h.Lease, CloseTimeout: closeTimeout}, source(t))
	held := Receive(t, e.Messages(), h.Wait)
	began := time.Now()
	closeWithin(t, e, h.Wait)
	if took := time.Since(began); took < closeTimeout {
		t.Fatalf("Close returned after %s, before the %s close timeout", took, closeTimeout)
	}
	if held.Context().Err() == nil {
		t.Fatal("held message's context not cancelled by Close")
	}
	// A late ack (a worker's ack that waited for the archive past shutdown) is ignored: it
	// must not fail, and the abandoned message is still delivered again.
	held.Ack()
	if !h.Leases {
		return
	}
	other := start(t, context.Background(), delivery.Config{MaxInFlight: 8, Lease: h.Lease}, source(t))
	again := Receive(t, other.Messages(), h.Wait+h.Lease)
	defer again.Ack()
	if again.UUID != held.UUID {
		t.Fatalf("got %s, want the abandoned %s, acked after Close", again.UUID, held.UUID)
	}
}

// testStopGivesBack: messages fetched and not yet handed out when the engine stops are given
// back at once, not left to their lease.
func testStopGivesBack(t *testing.T, h Harness) {
	const lease = 30 * time.Second
	publish, source := h.Open(t, lease)
	sent := newMessages(4)
	publish(t, sent...)
	cfg := delivery.Config{MaxInFlight: 4, Lease: lease, CloseTimeout: 100 * time.Millisecond}
	e := start(t, context.Background(), cfg, source(t))
	held := Receive(t, e.Messages(), h.Wait)
	time.Sleep(300 * time.Millisecond) // the other three are fetched, waiting for the reader
	closeWithin(t, e, h.Wait)
	other := start(t, context.Background(), cfg, source(t))
	got := map[string]bool{}
	for range 3 {
		m := Receive(t, other.Messages(), h.Wait)
		got[m.UUID] = true
		m.Ack()
	}
	if got[held.UUID] {
		t.Fatalf("the abandoned message %s came back before its lease ran out", held.UUID)
	}
}

// testContextEnd: when the engine's context ends, message contexts end and the channel
// closes once held messages are answered.
func testContextEnd(t *testing.T, h Harness) {
	publish, source := h.Open(t, h.Lease)
	publish(t, newMessages(3)...)
	ctx, cancel := context.WithCancel(context.Background())
	e := start(t, ctx, delivery.Config{MaxInFlight: 8, Lease: h.Lease}, source(t))
	m := Receive(t, e.Messages(), h.Wait)
	cancel()
	select {
	case <-m.Context().Done():
	case <-time.After(h.Wait):
		t.Fatal("message context not cancelled with the engine's context")
	}
	m.Nack()
	deadline := time.After(h.Wait)
	for {
		select {
		case m, ok := <-e.Messages():
			if !ok {
				return
			}
			m.Nack()
		case <-deadline:
			t.Fatal("channel not closed after the engine's context ended")
		}
	}
}

// NackDelaySlack is how much sooner than a nack delay a redelivery may come without breaking
// it: a twentieth of the delay. JetStream times a delayed nak on the wall clock (it stores
// time.Now().UnixNano() and compares against it), which runs apart from the monotonic clock a
// test reads by a millisecond or so (a redelivery came 999.06 ms after a 1 s nak); the delay
// is honoured at the transport's resolution, and a transport that ignores it redelivers at
// once, far sooner.
func NackDelaySlack(delay time.Duration) time.Duration { return delay / 20 }
