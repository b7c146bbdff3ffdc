package nats

import (
	"context"
	"errors"
	"fmt"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ResetConsumers deletes the durable consumers of group on the topics' streams, so that the
// next Subscribe creates them anew and every message still in the work-queue streams is
// delivered at once. Messages a dead process held unacked otherwise wait out the ack wait.
// Call it only when no other process consumes as group (the embedded default, which holds the
// data-dir lock). A missing stream or consumer is not an error.
func ResetConsumers(ctx context.Context, nc *natsgo.Conn, group string, topics ...string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if group == "" {
		group = DefaultGroup
	}
	var errs []error
	for _, topic := range topics {
		err := js.DeleteConsumer(ctx, StreamName(topic), group)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("reset consumer %s on %s: %w", group, topic, err))
		}
	}
	return errors.Join(errs...)
}
