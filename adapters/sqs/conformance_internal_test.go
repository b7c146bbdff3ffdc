package sqs

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/internal/delivery"
	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
)

// TestSourceConformance runs the delivery engine's conformance suite on SQS sources, each
// queue a fresh one on the emulator.
func TestSourceConformance(t *testing.T) {
	t.Parallel()
	client := NewTestClient(t)
	deliverytest.Run(t, deliverytest.Harness{
		Open: func(t *testing.T, lease time.Duration) (func(*testing.T, ...*message.Message), func(*testing.T) delivery.Source) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			queue := "conformance-" + watermill.NewShortUUID()
			if err := EnsureQueues(ctx, client, QueueSpec{Queues: []string{queue}, DeadLetterQueue: queue + "-dead"}); err != nil {
				t.Fatal(err)
			}
			pub, err := NewPublisher(PublisherConfig{Client: client})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })
			publish := func(t *testing.T, msgs ...*message.Message) {
				if err := pub.Publish(queue, msgs...); err != nil {
					t.Fatal(err)
				}
			}
			source := func(t *testing.T) delivery.Source {
				s, err := NewSubscriber(SubscriberConfig{Client: client, VisibilityTimeout: lease, WaitTime: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				url, err := s.urls.get(ctx, queue)
				if err != nil {
					t.Fatal(err)
				}
				src := s.newSource(queue, url, s.log)
				t.Cleanup(src.finish) // after the engines on it have closed
				return src
			}
			return publish, source
		},
		Leases: true,
		Lease:  2 * time.Second,
	})
}
