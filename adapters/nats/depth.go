package nats

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// QueueDepth returns how many messages of topic wait to be delivered to this subscriber's
// group (the consumer's pending count), or the stream's message count before the group has
// subscribed. It implements pipeline.DepthReporter and is safe for concurrent use.
func (s *Subscriber) QueueDepth(ctx context.Context, topic string) (int64, error) {
	stream, err := s.js.Stream(ctx, StreamName(topic))
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: %w", topic, err)
	}
	cons, err := stream.Consumer(ctx, s.cfg.Group)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		info, err := stream.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("queue depth of %s: %w", topic, err)
		}
		return int64(info.State.Msgs), nil
	}
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: %w", topic, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: %w", topic, err)
	}
	return int64(info.NumPending), nil
}
