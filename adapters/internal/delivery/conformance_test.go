package delivery_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/internal/delivery"
	"github.com/infleet/infleet/adapters/internal/delivery/deliverytest"
)

// TestConformance runs the engine's conformance suite on the in-memory queue.
func TestConformance(t *testing.T) {
	t.Parallel()
	deliverytest.Run(t, deliverytest.Harness{
		Open: func(t *testing.T, lease time.Duration) (func(*testing.T, ...*message.Message), func(*testing.T) delivery.Source) {
			q := deliverytest.NewQueue(lease)
			return func(_ *testing.T, msgs ...*message.Message) { q.Publish(msgs...) },
				func(*testing.T) delivery.Source { return q }
		},
		Leases: true,
		Lease:  300 * time.Millisecond,
		Wait:   5 * time.Second,
	})
}
