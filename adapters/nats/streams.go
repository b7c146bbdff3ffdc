package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultDuplicateWindow is how long JetStream remembers a message id (the Watermill UUID) to
// drop a second publish of the same message, such as a publisher's retry. It is three
// DefaultPublishTimeouts, so a publish retried after its first one timed out is still caught,
// and shorter than NATS's default of 2 minutes because the server keeps every id of the window
// in memory (about 140 bytes each): at 10,000 accepted jobs a second that is 170 MB for 2
// minutes and 42 MB for 30 s, all of it scanned by each garbage collection. A duplicate that
// comes later carries the same job id: a worker finds the job done and does not run it again,
// or, while it still runs, may call the model a second time; the job keeps one record and one
// result. Streams made before keep the window they were made with.
const DefaultDuplicateWindow = 3 * DefaultPublishTimeout

// StreamName returns the name of the stream that holds topic: the topic in upper case with
// every character a stream name may not contain ('.', '*', '>', white space, path separators)
// replaced by '_'; "infleet.high" becomes "INFLEET_HIGH". It is deterministic, so every process
// finds the same stream. Two topics that differ only in case or in those characters map to the
// same name; EnsureStreams reports that instead of sharing a stream.
func StreamName(topic string) string {
	return strings.ToUpper(safeName(topic))
}

// safeName replaces every character that JetStream does not allow in stream and consumer names.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// validTopic reports why topic cannot be a JetStream subject of its own.
func validTopic(topic string) error {
	if topic == "" {
		return errors.New("topic is empty (configure a topic name such as infleet.normal)")
	}
	for _, tok := range strings.Split(topic, ".") {
		if tok == "" {
			return fmt.Errorf("topic %q has an empty token (no leading, trailing or double dots)", topic)
		}
		if tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("topic %q contains a wildcard or white space (use letters, digits, '-', '_' and '.')", topic)
		}
	}
	return nil
}

// EnsureStreams creates, for each topic that has none, its stream: subject == topic, work-queue
// retention, file storage, DefaultDuplicateWindow. It is idempotent and safe to call
// concurrently from many processes; an existing stream keeps its configuration as long as it
// holds the topic.
func EnsureStreams(ctx context.Context, nc *natsgo.Conn, topics ...string) error {
	if nc == nil {
		return errors.New("ensure streams: no NATS connection (pass the connection from Server.Connect)")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	return ensureStreams(ctx, js, topics...)
}

func ensureStreams(ctx context.Context, js jetstream.JetStream, topics ...string) error {
	var errs []error
	for _, topic := range topics {
		if err := ensureStream(ctx, js, topic); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ensureStream(ctx context.Context, js jetstream.JetStream, topic string) error {
	if err := validTopic(topic); err != nil {
		return fmt.Errorf("ensure stream: %w", err)
	}
	name := StreamName(topic)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "infleet topic " + topic,
		Subjects:    []string{topic},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  DefaultDuplicateWindow,
		Replicas:    1,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s for topic %s: %w (is JetStream enabled on the server?)", name, topic, err)
	}
	// The stream exists with another configuration (an operator's change, or another topic
	// that maps to the same name): fine as long as it holds this topic.
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("look up stream %s for topic %s: %w", name, topic, err)
	}
	if subjects := s.CachedInfo().Config.Subjects; !slices.Contains(subjects, topic) {
		return fmt.Errorf("stream %s holds subjects %v, not topic %s: another topic maps to the same stream name (rename one of them)", name, subjects, topic)
	}
	return nil
}
