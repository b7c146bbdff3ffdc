package sqs_test

import (
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/infleet/infleet/adapters/sqs"
)

// TestPubSub runs Watermill's universal Pub/Sub suite against fauxqs. The suite's short mode
// is the default here; set INFLEET_SQS_FULL_SUITE=1 for the full one. Queues come from
// SubscribeInitialize, as the suite expects.
func TestPubSub(t *testing.T) {
	t.Parallel()
	b := setup(t)
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		pub, err := sqs.NewPublisher(sqs.PublisherConfig{Client: b.client})
		if err != nil {
			t.Fatal(err)
		}
		cfg := subscriberConfig(b)
		// Messages cut off by a closing subscriber come back after this.
		cfg.VisibilityTimeout = 3 * time.Second
		sub, err := sqs.NewSubscriber(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	tests.TestPubSub(t,
		tests.Features{
			// Every subscriber of a queue shares its messages: there are no groups.
			ConsumerGroups: false,
			// Up to MaxInFlight messages are handed out at once from standard queues, which
			// do not keep order.
			GuaranteedOrder:                     false,
			GuaranteedOrderWithSingleSubscriber: false,
			ExactlyOnceDelivery:                 false,
			Persistent:                          true,
			RequireSingleInstance:               false,
			// A consumed (deleted) message is gone.
			NewSubscriberReceivesOldMessages: false,
			ForceShort:                       os.Getenv("INFLEET_SQS_FULL_SUITE") == "",
		},
		constructor,
		func(t *testing.T, _ string) (message.Publisher, message.Subscriber) { return constructor(t) },
	)
}
