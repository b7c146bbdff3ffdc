package sqs_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/sqs"
	"github.com/infleet/infleet/messages"
)

// TestMetadataRoundTrip sends more metadata keys than SQS has attributes and gets every one
// back, with the UUID and payload, and without the nack delay.
func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	queue, _ := b.queues(t, 0)
	pub := newPublisher(t, b)
	msg := message.NewMessage(watermill.NewUUID(), []byte(`{"job_id":"j-1"}`))
	want := map[string]string{
		messages.MetaJobID: "j-1", messages.MetaPriority: "high", messages.MetaTenant: "acme",
		messages.MetaTraceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		messages.MetaReplayName:  "replay-1", messages.MetaAttempts: "2", "empty": "", "with space": "x",
	}
	for i := range 12 {
		want[fmt.Sprintf("extra_%d", i)] = fmt.Sprintf("v%d", i)
	}
	maps.Copy(msg.Metadata, want)
	msg.Metadata.Set(messages.MetaNackDelay, "1m")
	if err := pub.Publish(queue, msg); err != nil {
		t.Fatal(err)
	}
	got := receive(t, subscribe(t, newSubscriber(t, subscriberConfig(b)), queue), 10*time.Second)
	got.Ack()
	if got.UUID != msg.UUID || string(got.Payload) != string(msg.Payload) {
		t.Fatalf("got %s %q, want %s %q", got.UUID, got.Payload, msg.UUID, msg.Payload)
	}
	md := maps.Clone(map[string]string(got.Metadata))
	if md[sqs.MetaReceiveCount] != "1" || md[messages.MetaDeliveryCount] != "1" || md[sqs.MetaMessageID] == "" {
		t.Errorf("receive metadata %q %q %q", md[sqs.MetaReceiveCount], md[messages.MetaDeliveryCount], md[sqs.MetaMessageID])
	}
	delete(md, sqs.MetaReceiveCount)
	delete(md, messages.MetaDeliveryCount)
	delete(md, sqs.MetaMessageID)
	if !maps.Equal(md, want) {
		t.Fatalf("metadata\n got %v\nwant %v", md, want)
	}
}

// TestHeartbeat holds a message two and a half times longer than its visibility timeout: a
// second subscriber does not get it meanwhile, and gets it once the holder closes without
// answering. The timeout is 4 s: the delivery engine renews a lease when less than half of it
// is left, checking every quarter, so a renewal has a quarter of the timeout to land, and with
// 2 s a test run beside the whole suite (fauxqs is one Node thread) once missed that half
// second, the holder receiving its own message again.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	b := setup(t)
	queue, _ := b.queues(t, 0)
	publishN(t, newPublisher(t, b), queue, 1)

	cfg := subscriberConfig(b)
	cfg.VisibilityTimeout = 4 * time.Second
	cfg.CloseTimeout = 200 * time.Millisecond
	holder := newSubscriber(t, cfg)
	held := receive(t, subscribe(t, holder, queue), 10*time.Second)

	other := subscribe(t, newSubscriber(t, cfg), queue)
	noMessage(t, other, 10*time.Second)

	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Context().Done():
	default:
		t.Fatal("held message's context not cancelled by Close")
	}
	again := receive(t, other, 10*time.Second)
	if again.UUID != held.UUID || again.Metadata.Get(sqs.MetaReceiveCount) != "2" {
		t.Fatalf("got %s (receive count %s), want %s the second time", again.UUID, again.Metadata.Get(sqs.MetaReceiveCount), held.UUID)
	}
	again.Ack()
}

// TestPartialBatch nacks one message of ten: it comes back, the nine acked ones do not, even
// after their visibility timeout has passed.
func TestPartialBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	queue, _ := b.queues(t, 0)
	sent := publishN(t, newPublisher(t, b), queue, 10)
	cfg := subscriberConfig(b)
	cfg.VisibilityTimeout = 2 * time.Second
	sub := newSubscriber(t, cfg)
	ch := subscribe(t, sub, queue)

	var bad string
	got := map[string]bool{}
	for i := range len(sent) {
		m := receive(t, ch, 10*time.Second)
		got[m.UUID] = true
		if i == 3 {
			bad = m.UUID
			m.Nack()
			continue
		}
		m.Ack()
	}
	if len(got) != 10 {
		// The nacked one may come back before the others were received.
		for len(got) < 10 {
			m := receive(t, ch, 10*time.Second)
			got[m.UUID] = true
			if m.UUID == bad {
				bad = ""
			}
			m.Ack()
		}
	}
	if bad != "" {
		m := receive(t, ch, 10*time.Second)
		if m.UUID != bad {
			t.Fatalf("got %s again, want only the nacked %s", m.UUID, bad)
		}
		m.Ack()
	}
	noMessage(t, ch, 3*time.Second)
	waitFor(t, 5*time.Second, "an empty queue", func() bool {
		n, err := sub.QueueDepth(context.Background(), queue)
		return err == nil && n == 0
	})
}

// TestNackDelay nacks with messages.MetaNackDelay: the message is not back before the delay.
func TestNackDelay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	queue, _ := b.queues(t, 0)
	publishN(t, newPublisher(t, b), queue, 1)
	ch := subscribe(t, newSubscriber(t, subscriberConfig(b)), queue)
	m := receive(t, ch, 10*time.Second)
	m.Metadata.Set(messages.MetaNackDelay, "2s")
	m.Nack()
	noMessage(t, ch, 1500*time.Millisecond)
	again := receive(t, ch, 10*time.Second)
	if again.UUID != m.UUID {
		t.Fatalf("got %s, want %s", again.UUID, m.UUID)
	}
	again.Ack()
}

// TestRedrive nacks a message more times than the queue's MaxReceiveCount: SQS moves it to
// the dead-letter queue, where a scan finds it with a reason.
func TestRedrive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	queue, dead := b.queues(t, 2)
	pub := newPublisher(t, b)
	msg := message.NewMessage(watermill.NewUUID(), []byte("poison"))
	msg.Metadata.Set(messages.MetaJobID, "job-poison")
	if err := pub.Publish(queue, msg); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, subscriberConfig(b))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, queue)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	receives := 0
	go func() {
		defer wg.Done()
		for m := range ch {
			receives++
			m.Nack()
		}
	}()
	waitFor(t, 15*time.Second, "the message in the dead-letter queue", func() bool {
		n, err := sub.QueueDepth(context.Background(), dead)
		return err == nil && n == 1
	})
	cancel()
	wg.Wait()
	if receives != 2 {
		t.Errorf("received %d times, want MaxReceiveCount = 2", receives)
	}
	var found []string
	err = sub.ScanDeadLetters(ctxT(t), dead, func(id string, payload []byte, md map[string]string) bool {
		found = append(found, md[messages.MetaJobID]+" "+string(payload))
		if !strings.HasPrefix(md[messages.MetaDeadReason], messages.ErrCodeAttemptsExceeded+":") {
			t.Errorf("dead reason %q", md[messages.MetaDeadReason])
		}
		return true
	})
	if err != nil || len(found) != 1 || found[0] != "job-poison poison" {
		t.Fatalf("scan: %v %q", err, found)
	}
}
