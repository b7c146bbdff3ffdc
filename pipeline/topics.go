package pipeline

import (
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
