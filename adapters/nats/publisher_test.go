package nats_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	infnats "github.com/infleet/infleet/adapters/nats"
)

// TestPublishCreatesTheMissingStream: a single message published to a topic that no stream
// stores yet (the server answers that nothing responds) makes the publisher create the
// topic's stream and store the message once.
func TestPublishCreatesTheMissingStream(t *testing.T) {
	t.Parallel()
	bundle := setup(t)
	pub := newPublisher(t, bundle.nc)
	const topic = "fresh.topic"
	for _, n := range []int{1, 3} {
		msgs := make([]*message.Message, n)
		for i := range msgs {
			msgs[i] = message.NewMessage(newID(), []byte(`{"n":1}`))
		}
		if err := pub.Publish(topic, msgs...); err != nil {
			t.Fatalf("Publish of %d: %v", n, err)
		}
	}
	js, err := jetstream.New(bundle.nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(context.Background(), infnats.StreamName(topic))
	if err != nil {
		t.Fatalf("the stream of %s: %v", topic, err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 4 {
		t.Fatalf("the stream holds %d messages, want 4", info.State.Msgs)
	}
}
