package nats

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/internal/delivery"
	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
)

// TestSourceConformance runs the delivery engine's conformance suite on JetStream sources:
// each queue is a topic on its own embedded server, each source another binding to the
// group's consumer.
func TestSourceConformance(t *testing.T) {
	t.Parallel()
	deliverytest.Run(t, deliverytest.Harness{
		Open: func(t *testing.T, lease time.Duration) (func(*testing.T, ...*message.Message), func(*testing.T) delivery.Source) {
			srv, err := StartServer(ServerConfig{StoreDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Shutdown)
			nc, err := srv.Connect()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			const topic = "infleet.conformance"
			pub, err := NewPublisher(PublisherConfig{Conn: nc})
			if err != nil {
				t.Fatal(err)
			}
			publish := func(t *testing.T, msgs ...*message.Message) {
				if err := pub.Publish(topic, msgs...); err != nil {
					t.Fatal(err)
				}
			}
			source := func(t *testing.T) delivery.Source {
				s, err := NewSubscriber(SubscriberConfig{Conn: nc, AckWait: lease})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				cons, err := s.consumer(ctx, topic)
				if err != nil {
					t.Fatal(err)
				}
				return &source{s: s, topic: topic, log: s.log, cons: cons}
			}
			return publish, source
		},
		Leases: true,
		Lease:  500 * time.Millisecond,
	})
}
