package kafka

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/infleet/infleet/pipeline"
)

// HeaderEventType carries a lifecycle event's type (job.completed, ...) on its record, so
// consumers can filter without decoding the value.
const HeaderEventType = "event_type"

// NotifierConfig configures a Notifier.
type NotifierConfig struct {
	// Brokers are the bootstrap addresses, host:port (required).
	Brokers []string
	// TLS is the client TLS configuration (NewTLSConfig); nil: plaintext.
	TLS *tls.Config
	// SASL authenticates each connection (NewSASLMechanism); nil: no authentication.
	SASL sasl.Mechanism
	// Topic receives the events (required). It must exist (infleet init creates it).
	Topic string
	// Compression is none, gzip, snappy, lz4 or zstd (default DefaultCompression).
	Compression string
	// Linger is the longest an event waits for others to share its produce request (default
	// DefaultBatchTimeout).
	Linger time.Duration
	// Logger receives the writer's log lines; the zero value discards them.
	Logger zerolog.Logger
}

// Notifier publishes lifecycle events to a Kafka topic: the key is the job id (a job's events
// stay in one partition, in order), the value the JSON of messages.Event, and the header
// HeaderEventType its type. It implements pipeline.Notifier; Notify is safe for concurrent
// use, and concurrent calls share produce requests.
type Notifier struct {
	w     *kafkago.Writer
	rt    kafkago.RoundTripper // nil: kafka-go's default
	topic string
}

var _ pipeline.Notifier = (*Notifier)(nil)

// NewNotifier returns a Notifier on cfg.Brokers. It does not connect until the first event.
func NewNotifier(cfg NotifierConfig) (*Notifier, error) {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("kafka notifier: Brokers is empty (give at least one host:port)"))
	}
	if cfg.Topic == "" {
		errs = append(errs, errors.New("kafka notifier: Topic is empty (name the events topic)"))
	}
	compression, ok := compressions[cmp.Or(cfg.Compression, DefaultCompression)]
	if !ok {
		errs = append(errs, fmt.Errorf("kafka notifier: Compression %q is unknown (use none, gzip, snappy, lz4 or zstd)", cfg.Compression))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rt := newTransport(cfg.TLS, cfg.SASL)
	return &Notifier{
		topic: cfg.Topic,
		rt:    rt,
		w: &kafkago.Writer{
			Addr:         kafkago.TCP(cfg.Brokers...),
			Transport:    rt,
			Balancer:     &kafkago.Hash{},
			BatchTimeout: cmp.Or(cfg.Linger, DefaultBatchTimeout),
			RequiredAcks: kafkago.RequireAll,
			Compression:  compression,
			ErrorLogger:  errorLogger(cfg.Logger),
		},
	}, nil
}

// Notify writes n's event and returns once every in-sync replica has it. An error means it
// was not stored (publishing it again is safe: consumers see at least once).
func (n *Notifier) Notify(ctx context.Context, note pipeline.Notification) error {
	body, err := json.Marshal(note.Event)
	if err != nil {
		return fmt.Errorf("kafka event for %s: %w", note.Event.JobID, err)
	}
	rec := kafkago.Message{
		Topic:   n.topic,
		Key:     []byte(note.Event.JobID),
		Value:   body,
		Headers: []kafkago.Header{{Key: HeaderEventType, Value: []byte(note.Event.Type)}},
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultPublishTimeout)
	defer cancel()
	if err := n.w.WriteMessages(ctx, rec); err != nil {
		return fmt.Errorf("kafka event for %s to %s: %w (check the brokers and that the topic exists: infleet init creates it)", note.Event.JobID, n.topic, err)
	}
	return nil
}

// Close flushes and closes the writer. It is idempotent.
func (n *Notifier) Close() error {
	err := n.w.Close()
	closeTransport(n.rt)
	if err != nil {
		return fmt.Errorf("close kafka notifier: %w", err)
	}
	return nil
}
