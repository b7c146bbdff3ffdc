package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/infleet/infleet/messages"
)

// Topics names the transport topic (stream subject, SQS queue, Kafka topic) of each priority
// and of the dead letters.
type Topics struct {
	High, Normal, Low string
	// Dead is where messages that can never succeed, or ran out of attempts, are kept.
	Dead string
}

// For returns the topic of priority p; an empty or unknown priority maps to Normal.
func (t Topics) For(p messages.Priority) string {
	switch p {
	case messages.PriorityHigh:
		return t.High
	case messages.PriorityLow:
		return t.Low
	}
	return t.Normal
}

// Validate reports every missing or repeated topic name.
func (t Topics) Validate() error {
	var errs []error
	seen := map[string]string{}
	for _, e := range []struct{ name, topic string }{
		{"high", t.High}, {"normal", t.Normal}, {"low", t.Low}, {"dead", t.Dead},
	} {
		if e.topic == "" {
			errs = append(errs, fmt.Errorf("topics: no %s topic configured", e.name))
			continue
		}
		if prev, ok := seen[e.topic]; ok {
			errs = append(errs, fmt.Errorf("topics: %s and %s share topic %q (give each its own)", prev, e.name, e.topic))
		}
		seen[e.topic] = e.name
	}
	return errors.Join(errs...)
}

// Metadata keys a dead-lettered message carries besides messages.MetaDeadReason and
// messages.MetaAttempts.
const (
	MetaDeadCode = "dead_code"
	MetaDeadAt   = "dead_at"
	MetaTask     = "task"
)

// DeadLetterBox is a transport's ability to read and remove what its dead-letter place keeps.
// Implementations are safe for concurrent use.
type DeadLetterBox interface {
	// ScanDeadLetters calls fn for each message kept on topic, oldest first, until fn returns
	// false.
	ScanDeadLetters(ctx context.Context, topic string, fn func(id string, payload []byte, md map[string]string) bool) error
	// RemoveDeadLetter deletes the kept message id; a missing one is not an error.
	RemoveDeadLetter(ctx context.Context, topic, id string) error
}

// DepthReporter is an optional ability of a transport: the number of messages waiting on a topic.
type DepthReporter interface {
	QueueDepth(ctx context.Context, topic string) (int64, error)
}
