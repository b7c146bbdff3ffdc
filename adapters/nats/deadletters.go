package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ScanDeadLetters calls fn with each message kept in topic's stream, oldest first, until fn
// returns false. It reads by sequence (direct get), so it needs no consumer and leaves the
// work-queue stream as it is. The id passed to fn is the stream sequence. It implements
// pipeline.DeadLetterBox.
func (s *Subscriber) ScanDeadLetters(ctx context.Context, topic string, fn func(id string, payload []byte, md map[string]string) bool) error {
	stream, err := s.js.Stream(ctx, StreamName(topic))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dead letters on %s: %w", topic, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("dead letters on %s: %w", topic, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted: a gap in the sequence
		}
		if err != nil {
			return fmt.Errorf("dead letter %d on %s: %w", seq, topic, err)
		}
		md := make(map[string]string, len(raw.Header))
		for k, vs := range raw.Header {
			if len(vs) > 0 && !strings.HasPrefix(k, natsHeaderPrefix) {
				md[k] = vs[0]
			}
		}
		if !fn(strconv.FormatUint(seq, 10), raw.Data, md) {
			return nil
		}
	}
	return nil
}

// RemoveDeadLetter deletes the message with stream sequence id from topic's stream; a missing
// message is not an error. It implements pipeline.DeadLetterBox.
func (s *Subscriber) RemoveDeadLetter(ctx context.Context, topic, id string) error {
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return fmt.Errorf("dead letter id %q is not a stream sequence", id)
	}
	stream, err := s.js.Stream(ctx, StreamName(topic))
	if err != nil {
		return fmt.Errorf("remove dead letter %s on %s: %w", id, topic, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("remove dead letter %s on %s: %w", id, topic, err)
	}
	return nil
}
