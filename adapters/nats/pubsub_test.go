package nats_test

import (
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	infnats "github.com/infleet/infleet/adapters/nats"
)

func newID() string { return watermill.NewUUID() }

// TestPubSub runs Watermill's universal Pub/Sub suite against the embedded server. The suite's
// short mode is the default here (about 20 s; the full one takes about 50 s on two cores): set
// INFLEET_NATS_FULL_SUITE=1 for the full one.
func TestPubSub(t *testing.T) {
	t.Parallel()
	b := setup(t)
	constructor := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		nc := connect(t, b.srv)
		pub, err := infnats.NewPublisher(infnats.PublisherConfig{Conn: nc})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := infnats.NewSubscriber(infnats.SubscriberConfig{
			Conn:  nc,
			Group: group,
			// The suite closes subscribers holding unanswered messages; do not wait long.
			CloseTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	tests.TestPubSub(t,
		tests.Features{
			// A work-queue stream admits one consumer group per topic: a message goes to one
			// group only, so the suite's two-group test does not apply.
			ConsumerGroups: false,
			// Up to MaxInFlight messages are handed out at once, and redelivered ones come
			// back out of order.
			GuaranteedOrder:                     false,
			GuaranteedOrderWithSingleSubscriber: false,
			ExactlyOnceDelivery:                 false,
			Persistent:                          true,
			RequireSingleInstance:               false,
			// Work-queue retention deletes a message once it is acked.
			NewSubscriberReceivesOldMessages: false,
			ForceShort:                       os.Getenv("INFLEET_NATS_FULL_SUITE") == "",
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) { return constructor(t, "") },
		constructor,
	)
}
