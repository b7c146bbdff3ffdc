package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/worker"
)

// readySubscriber hands out every message of a topic at once, without waiting for acks, as
// a prefetching transport (the NATS adapter, SQS batch receive) does; GoChannel delivers one
// message per topic at a time, which would hide the scheduling policy.
type readySubscriber struct{ topics map[string][]*message.Message }

func (r *readySubscriber) Subscribe(_ context.Context, topic string) (<-chan *message.Message, error) {
	ch := make(chan *message.Message, len(r.topics[topic]))
	for _, m := range r.topics[topic] {
		ch <- m
	}
	return ch, nil
}

func (r *readySubscriber) Close() error { return nil }

// schedule offers counts[p] messages per priority to a Scheduler with one slot, acking each,
// and returns the priorities in the order they were handed out.
func schedule(t *testing.T, cfg worker.SchedulerConfig, counts map[messages.Priority]int) []messages.Priority {
	t.Helper()
	sub := &readySubscriber{topics: map[string][]*message.Message{}}
	total := 0
	for p, n := range counts {
		for i := range n {
			msg := message.NewMessage(fmt.Sprintf("%s-%d", p, i), nil)
			msg.Metadata.Set(messages.MetaPriority, string(p))
			sub.topics[pipelinetest.Topics.For(p)] = append(sub.topics[pipelinetest.Topics.For(p)], msg)
		}
		total += n
	}
	cfg.Subscriber = sub
	cfg.Topics = pipelinetest.Topics
	cfg.Concurrency = 1
	s, err := worker.NewScheduler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	out, err := s.Subscribe(ctx, worker.SchedulerTopic)
	if err != nil {
		t.Fatal(err)
	}
	var order []messages.Priority
	for len(order) < total {
		select {
		case msg := <-out:
			order = append(order, messages.Priority(msg.Metadata.Get(messages.MetaPriority)))
			msg.Ack()
		case <-ctx.Done():
			t.Fatalf("got %d of %d messages before the deadline", len(order), total)
		}
	}
	return order
}

func count(order []messages.Priority, p messages.Priority) int {
	n := 0
	for _, q := range order {
		if q == p {
			n++
		}
	}
	return n
}

func TestSchedulerWeightedSharesByWeight(t *testing.T) {
	t.Parallel()
	order := schedule(t, worker.SchedulerConfig{WeightHigh: 6, WeightNormal: 3, WeightLow: 1},
		map[messages.Priority]int{messages.PriorityHigh: 200, messages.PriorityNormal: 200, messages.PriorityLow: 200})
	first := order[:100]
	high, normal, low := count(first, messages.PriorityHigh), count(first, messages.PriorityNormal), count(first, messages.PriorityLow)
	if high != 60 || normal != 30 || low != 10 {
		t.Fatalf("first 100 hand-outs: high %d, normal %d, low %d; want about 60/30/10", high, normal, low)
	}
}

func TestSchedulerWeightedLowProgressesUnderHighFlood(t *testing.T) {
	t.Parallel()
	order := schedule(t, worker.SchedulerConfig{},
		map[messages.Priority]int{messages.PriorityHigh: 300, messages.PriorityLow: 50})
	// Normal is empty: high and low share 6:1.
	if low := count(order[:140], messages.PriorityLow); low < 18 || low > 22 {
		t.Fatalf("low got %d of the first 140 hand-outs under a high flood; want about 20 (6:1)", low)
	}
}

func TestSchedulerStrictServesHigherFirst(t *testing.T) {
	t.Parallel()
	order := schedule(t, worker.SchedulerConfig{Strict: true},
		map[messages.Priority]int{messages.PriorityHigh: 100, messages.PriorityLow: 100})
	if low := count(order[:100], messages.PriorityLow); low != 0 {
		t.Fatalf("strict: %d low messages among the first 100 while high ones were waiting", low)
	}
}

func TestSchedulerHighNotStarvedByLowFlood(t *testing.T) {
	t.Parallel()
	order := schedule(t, worker.SchedulerConfig{},
		map[messages.Priority]int{messages.PriorityLow: 500, messages.PriorityHigh: 20})
	last := 0
	for i, p := range order {
		if p == messages.PriorityHigh {
			last = i
		}
	}
	if last > 25 {
		t.Fatalf("the last high message was handed out at position %d behind a low flood; want within the first 25", last)
	}
}

func TestSchedulerBoundsInFlight(t *testing.T) {
	t.Parallel()
	pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	for i := range 20 {
		if err := pubsub.Publish(pipelinetest.Topics.Normal, message.NewMessage(fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := worker.NewScheduler(worker.SchedulerConfig{Subscriber: pubsub, Topics: pipelinetest.Topics, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	out, err := s.Subscribe(ctx, worker.SchedulerTopic)
	if err != nil {
		t.Fatal(err)
	}
	var held []*message.Message
	for range 3 {
		held = append(held, <-out)
	}
	select {
	case msg := <-out:
		t.Fatalf("a fourth message %s was handed out with 3 in flight and concurrency 3", msg.UUID)
	case <-time.After(100 * time.Millisecond):
	}
	held[0].Ack()
	select {
	case <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("no message handed out after an ack freed a slot")
	}
}

func TestSchedulerDrainKeepsStreamOpenUntilClose(t *testing.T) {
	t.Parallel()
	sub := &readySubscriber{topics: map[string][]*message.Message{pipelinetest.Topics.Normal: {message.NewMessage("a", nil), message.NewMessage("b", nil)}}}
	s, err := worker.NewScheduler(worker.SchedulerConfig{Subscriber: sub, Topics: pipelinetest.Topics, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Subscribe(context.Background(), worker.SchedulerTopic)
	if err != nil {
		t.Fatal(err)
	}
	first := <-out
	s.Drain()
	first.Ack()
	select {
	case msg, open := <-out:
		if open {
			t.Fatalf("message %s handed out after Drain", msg.UUID)
		}
		t.Fatal("stream closed by Drain; a router would close the transport under running jobs")
	case <-time.After(100 * time.Millisecond):
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, open := <-out; open {
		t.Fatal("stream still open after Close")
	}
}
