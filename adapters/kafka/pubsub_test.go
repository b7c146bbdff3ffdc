package kafka_test

import (
	"os"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	infkafka "github.com/infleet/infleet/adapters/kafka"
)

// TestPubSub runs Watermill's universal Pub/Sub suite against kfake. The suite's short mode
// is the default here; set INFLEET_KAFKA_FULL_SUITE=1 for the full one.
func TestPubSub(t *testing.T) {
	t.Parallel()
	b := setup(t)
	constructor := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := infkafka.NewPublisher(infkafka.PublisherConfig{Brokers: b.brokers, AllowAutoTopicCreation: true})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := infkafka.NewSubscriber(subscriberConfig(b, group))
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	tests.TestPubSub(t,
		tests.Features{
			// Consumer groups are Kafka's: each group gets every message, members share them.
			ConsumerGroups: true,
			// Up to MaxInFlight messages are handed out at once, and nacked ones come back
			// out of order.
			GuaranteedOrder:                     false,
			GuaranteedOrderWithSingleSubscriber: false,
			ExactlyOnceDelivery:                 false,
			Persistent:                          true,
			RequireSingleInstance:               false,
			// A new group starts at the oldest retained offset.
			NewSubscriberReceivesOldMessages: true,
			ForceShort:                       os.Getenv("INFLEET_KAFKA_FULL_SUITE") == "",
		},
		// Each pub/sub pair gets its own group, so that the suite's parallel tests do not
		// rebalance one another.
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return constructor(t, "test_"+watermill.NewShortUUID())
		},
		constructor,
	)
}
