package nats_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
	infnats "github.com/infleet/infleet/adapters/nats"
	"github.com/infleet/infleet/messages"
)

func TestSubscriberHandsOutMaxInFlightWithoutAcks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const inFlight = 64
	topic := "infleet.concurrency"
	pub := newPublisher(t, b.nc)
	published := publishN(t, pub, topic, inFlight+10)

	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc, MaxInFlight: inFlight})
	ch := subscribe(t, sub, topic)
	held := map[string]*message.Message{}
	for range inFlight {
		m := receive(t, ch, 5*time.Second)
		held[m.UUID] = m
	}
	if len(held) != inFlight {
		t.Fatalf("got %d distinct messages, want %d", len(held), inFlight)
	}
	// Every slot is taken: nothing more until one is answered.
	noMessage(t, ch, 300*time.Millisecond)
	for _, m := range held {
		m.Ack()
	}
	for range len(published) - inFlight {
		receive(t, ch, 5*time.Second).Ack()
	}
}

func TestSubscriberMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.meta"
	pub := newPublisher(t, b.nc)
	in := message.NewMessage(newID(), []byte(`{"job_id":"j1"}`))
	in.Metadata.Set(messages.MetaJobID, "j1")
	in.Metadata.Set(messages.MetaTraceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	in.Metadata.Set("Mixed-Case_key", "kept as is")
	if err := pub.Publish(topic, in); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc})
	out := receive(t, subscribe(t, sub, topic), 5*time.Second)
	defer out.Ack()
	if out.UUID != in.UUID || string(out.Payload) != string(in.Payload) {
		t.Fatalf("got %s %q, want %s %q", out.UUID, out.Payload, in.UUID, in.Payload)
	}
	for k, v := range in.Metadata {
		if got := out.Metadata.Get(k); got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	if got := out.Metadata.Get(infnats.MetaDeliveryCount); got != "1" {
		t.Errorf("delivery_count = %q, want 1", got)
	}
}

func TestPublishIsDeduplicatedByUUID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.dedup"
	pub := newPublisher(t, b.nc)
	msg := message.NewMessage(newID(), []byte("x"))
	for range 3 { // a publisher retrying the same message
		if err := pub.Publish(topic, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(topic, msg, message.NewMessage(newID(), []byte("y"))); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc})
	ch := subscribe(t, sub, topic)
	seen := map[string]int{}
	for range 2 {
		m := receive(t, ch, 5*time.Second)
		seen[m.UUID]++
		m.Ack()
	}
	noMessage(t, ch, 300*time.Millisecond)
	if seen[msg.UUID] != 1 || len(seen) != 2 {
		t.Fatalf("deliveries by uuid = %v, want each of 2 messages once", seen)
	}
}

func TestSubscriberNackDelayIsHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.nackdelay"
	publishN(t, newPublisher(t, b.nc), topic, 1)
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc})
	ch := subscribe(t, sub, topic)

	const delay = 1500 * time.Millisecond
	first := receive(t, ch, 5*time.Second)
	first.Metadata.Set(messages.MetaNackDelay, delay.String()) // set by the handler before it fails
	nacked := time.Now()
	first.Nack()

	second := receive(t, ch, 10*time.Second)
	defer second.Ack()
	if waited := time.Since(nacked); waited < delay-deliverytest.NackDelaySlack(delay) {
		t.Fatalf("redelivered after %s, before the %s nack delay", waited, delay)
	}
	if second.UUID != first.UUID || second.Metadata.Get(infnats.MetaDeliveryCount) != "2" {
		t.Fatalf("got %s delivery %s, want %s delivery 2", second.UUID, second.Metadata.Get(infnats.MetaDeliveryCount), first.UUID)
	}
}

func TestSubscriberNackWithoutDelayRedeliversAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.nack"
	publishN(t, newPublisher(t, b.nc), topic, 1)
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc})
	ch := subscribe(t, sub, topic)
	receive(t, ch, 5*time.Second).Nack()
	// Well inside the default 60 s ack wait: only the Nak can bring it back this soon.
	m := receive(t, ch, 5*time.Second)
	m.Ack()
	if got := m.Metadata.Get(infnats.MetaDeliveryCount); got != "2" {
		t.Fatalf("delivery_count = %s, want 2", got)
	}
}

func TestSubscriberKeepsHeldMessageAlivePastAckWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.inprogress"
	publishN(t, newPublisher(t, b.nc), topic, 1)
	cfg := infnats.SubscriberConfig{Conn: b.nc, AckWait: time.Second}
	// MaxInFlight 1: while the holder holds the message it pulls nothing, so a redelivery
	// could only go to the other member of the group.
	holder := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc, AckWait: time.Second, MaxInFlight: 1})
	held := receive(t, subscribe(t, holder, topic), 5*time.Second)

	other := newSubscriber(t, cfg)
	noMessage(t, subscribe(t, other, topic), 3500*time.Millisecond)
	held.Ack()
}

func TestSubscriberRedeliversWhenNotAnsweredWithoutProgress(t *testing.T) {
	// The control for the test above: without progress reports, one ack wait redelivers.
	t.Parallel()
	b := setup(t)
	topic := "infleet.noprogress"
	publishN(t, newPublisher(t, b.nc), topic, 1)
	cfg := infnats.SubscriberConfig{Conn: b.nc, AckWait: time.Second, CloseTimeout: 100 * time.Millisecond}
	holder := newSubscriber(t, cfg)
	held := receive(t, subscribe(t, holder, topic), 5*time.Second)
	_ = holder.Close() // gives up on the held message without answering it

	other := newSubscriber(t, cfg)
	m := receive(t, subscribe(t, other, topic), 5*time.Second)
	m.Ack()
	if m.UUID != held.UUID {
		t.Fatalf("got %s, want %s", m.UUID, held.UUID)
	}
}

func TestSubscriberCloseLeavesUnackedForRedelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.close"
	const total = 20
	published := publishN(t, newPublisher(t, b.nc), topic, total)
	cfg := infnats.SubscriberConfig{Conn: b.nc, MaxInFlight: 8, CloseTimeout: 200 * time.Millisecond}

	first := newSubscriber(t, cfg)
	ch := subscribe(t, first, topic)
	acked := map[string]bool{}
	for range 3 {
		m := receive(t, ch, 5*time.Second)
		acked[m.UUID] = true
		m.Ack()
	}
	held := receive(t, ch, 5*time.Second) // handed out, never answered
	closed := make(chan error, 1)
	go func() { closed <- first.Close() }()
	select {
	case <-held.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("held message's context not cancelled by Close")
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	for range ch { // closed after Close
	}
	if _, err := first.Subscribe(context.Background(), topic); err == nil {
		t.Fatal("Subscribe after Close succeeded")
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// A new member gets every message not acked, the abandoned one included (after the ack
	// wait); none is lost.
	second := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc, AckWait: time.Second})
	ch2 := subscribe(t, second, topic)
	got := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(got) < total-len(acked) {
		select {
		case m := <-ch2:
			if acked[m.UUID] {
				t.Fatalf("acked message %s delivered again", m.UUID)
			}
			got[m.UUID] = true
			m.Ack()
		case <-deadline:
			t.Fatalf("got %d of %d unacked messages", len(got), total-len(acked))
		}
	}
	if !got[held.UUID] {
		t.Fatal("the held message was not redelivered")
	}
	_ = published
}

func TestSubscribeContextEndClosesChannel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.ctx"
	publishN(t, newPublisher(t, b.nc), topic, 5)
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc})
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	m := receive(t, ch, 5*time.Second)
	cancel()
	select {
	case <-m.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("message context not cancelled with the subscribe context")
	}
	m.Nack()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return
			}
			m.Nack()
		case <-deadline:
			t.Fatal("channel not closed after the subscribe context ended")
		}
	}
}

func TestPersistenceAcrossServerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	topic := "infleet.persist"
	srv, err := infnats.StartServer(infnats.ServerConfig{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := infnats.NewPublisher(infnats.PublisherConfig{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	batch := make([]*message.Message, 10)
	for i := range batch {
		batch[i] = message.NewMessage(newID(), []byte(strconv.Itoa(i)))
		want[batch[i].UUID] = true
	}
	if err := pub.Publish(topic, batch...); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()
	srv.Shutdown() // idempotent

	srv2, err := infnats.StartServer(infnats.ServerConfig{StoreDir: dir})
	if err != nil {
		t.Fatalf("restart on the same store: %v", err)
	}
	t.Cleanup(srv2.Shutdown)
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: connect(t, srv2)})
	ch := subscribe(t, sub, topic)
	for len(want) > 0 {
		m := receive(t, ch, 5*time.Second)
		delete(want, m.UUID)
		m.Ack()
	}
}

func TestSecondGroupOnTopicIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.groups"
	subscribe(t, newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc, Group: "workers-a"}), topic)
	other := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc, Group: "workers-b"})
	if _, err := other.Subscribe(context.Background(), topic); err == nil {
		t.Fatal("a second group on a work-queue topic was accepted")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	if _, err := infnats.StartServer(infnats.ServerConfig{}); err == nil {
		t.Error("StartServer without StoreDir succeeded")
	}
	if _, err := infnats.NewPublisher(infnats.PublisherConfig{}); err == nil {
		t.Error("NewPublisher without Conn succeeded")
	}
	if _, err := infnats.NewSubscriber(infnats.SubscriberConfig{MaxInFlight: -1, Group: "a.b"}); err == nil {
		t.Error("NewSubscriber with a bad config succeeded")
	}
}

func TestEnsureStreamsIsIdempotentAndRejectsCollisions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	topics := []string{"infleet.high", "infleet.normal", "infleet.low", "infleet.dead"}
	for range 2 {
		if err := infnats.EnsureStreams(ctx, b.nc, topics...); err != nil {
			t.Fatal(err)
		}
	}
	if got := infnats.StreamName("infleet.high"); got != "INFLEET_HIGH" {
		t.Errorf("StreamName = %s, want INFLEET_HIGH", got)
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "INFLEET_HIGH")
	if err != nil {
		t.Fatal(err)
	}
	// The window outlasts a publish retried after its first one timed out, and no more.
	if got := st.CachedInfo().Config.Duplicates; got != infnats.DefaultDuplicateWindow || got < 2*infnats.DefaultPublishTimeout {
		t.Errorf("the stream's duplicate window is %s, want %s (at least two publish timeouts)", got, infnats.DefaultDuplicateWindow)
	}
	// "infleet_high" maps to the same stream name as "infleet.high".
	if err := infnats.EnsureStreams(ctx, b.nc, "infleet_high"); err == nil {
		t.Error("a topic colliding with another's stream name was accepted")
	}
	if err := infnats.EnsureStreams(ctx, b.nc, "infleet.*"); err == nil {
		t.Error("a wildcard topic was accepted")
	}
}

func TestPublisherCreatesMissingStreamAndRefusesAfterClose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pub := newPublisher(t, b.nc)
	// Nothing created infleet.fresh's stream: the publisher makes it rather than losing jobs.
	publishN(t, pub, "infleet.fresh", 3)
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc})
	ch := subscribe(t, sub, "infleet.fresh")
	for range 3 {
		receive(t, ch, 5*time.Second).Ack()
	}
	_ = pub.Close()
	if err := pub.Publish("infleet.fresh", message.NewMessage(newID(), nil)); err == nil {
		t.Fatal("Publish after Close succeeded")
	}
}

func TestCloseDrainTimeoutLetsHeldMessagesFinish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := "infleet.drain"
	publishN(t, newPublisher(t, b.nc), topic, 1)
	sub := newSubscriber(t, infnats.SubscriberConfig{Conn: b.nc, DrainTimeout: time.Minute})
	held := receive(t, subscribe(t, sub, topic), 5*time.Second)

	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	waitUntil(t, 5*time.Second, func() bool {
		_, err := sub.Subscribe(context.Background(), topic)
		return err != nil // Close has begun
	})
	if err := held.Context().Err(); err != nil {
		t.Fatalf("held message's context ended during the drain: %v", err)
	}
	held.Ack()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the last held message was acked")
	}
}

func TestServerListensWhenAsked(t *testing.T) {
	t.Parallel()
	srv, err := infnats.StartServer(infnats.ServerConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := natsgo.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect over TCP to %s: %v", srv.ClientURL(), err)
	}
	defer nc.Close()
	if err := infnats.EnsureStreams(context.Background(), nc, "infleet.tcp"); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
