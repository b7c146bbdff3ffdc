package kafka

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/sasl"
)

// Publisher defaults.
const (
	// DefaultBatchTimeout is the longest a message waits for others to fill its batch.
	DefaultBatchTimeout = 5 * time.Millisecond
	// DefaultBatchSize is the most messages sent in one produce request per partition.
	DefaultBatchSize = 1000
	// DefaultCompression compresses batches.
	DefaultCompression = "snappy"
	// DefaultPublishTimeout bounds one Publish call's wait for the brokers' acknowledgement.
	DefaultPublishTimeout = 10 * time.Second
)

// bulkLinger bounds the linger of a multi-message Publish: its messages are queued at once,
// so waiting longer would only add latency.
const bulkLinger = time.Millisecond

// ErrPublisherClosed is returned by Publish after Close.
var ErrPublisherClosed = errors.New("kafka publisher is closed (create a new one)")

// compressions maps the configurable names to kafka-go's codecs.
var compressions = map[string]compress.Compression{
	"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd,
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Brokers are the bootstrap addresses, host:port (required).
	Brokers []string
	// TLS is the client TLS configuration (NewTLSConfig); nil: plaintext.
	TLS *tls.Config
	// SASL authenticates each connection (NewSASLMechanism); nil: no authentication.
	SASL sasl.Mechanism
	// BatchTimeout is the longest the message of a single-message Publish lingers for other
	// calls' messages to fill its batch (default DefaultBatchTimeout). The messages of a
	// multi-message Publish fill their own batches and linger at most bulkLinger (1ms).
	BatchTimeout time.Duration
	// BatchSize is the most messages in one produce request per partition (default
	// DefaultBatchSize).
	BatchSize int
	// Compression is none, gzip, snappy, lz4 or zstd (default DefaultCompression).
	Compression string
	// PublishTimeout bounds one Publish call (default DefaultPublishTimeout).
	PublishTimeout time.Duration
	// AllowAutoTopicCreation lets a produce to a missing topic create it, where the cluster
	// allows that. The default is off: create topics with EnsureTopics (infleet init).
	AllowAutoTopicCreation bool
	// Logger receives the publisher's log lines; the zero value discards them.
	Logger zerolog.Logger
}

// Validate reports every problem in cfg, each naming the field and the fix.
func (cfg PublisherConfig) Validate() error {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("kafka publisher: Brokers is empty (give at least one host:port)"))
	}
	if _, ok := compressions[cmp.Or(cfg.Compression, DefaultCompression)]; !ok {
		errs = append(errs, fmt.Errorf("kafka publisher: Compression %q is unknown (use none, gzip, snappy, lz4 or zstd)", cfg.Compression))
	}
	if cfg.BatchTimeout < 0 || cfg.BatchSize < 0 || cfg.PublishTimeout < 0 {
		errs = append(errs, errors.New("kafka publisher: BatchTimeout, BatchSize and PublishTimeout cannot be negative (use 0 for the defaults)"))
	}
	return errors.Join(errs...)
}

// Publisher is a Watermill message.Publisher on a kafka-go Writer. Publish returns nil once
// every in-sync replica has the messages. Publish is safe for concurrent use; concurrent
// calls share batches.
type Publisher struct {
	w       *kafkago.Writer      // single-message calls: linger for other calls' messages
	bulk    *kafkago.Writer      // multi-message calls: the call fills its own batches
	rt      kafkago.RoundTripper // shared by w and bulk; nil: kafka-go's default
	timeout time.Duration
	log     zerolog.Logger

	mu     sync.RWMutex // held for reading by each Publish, for writing by Close
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher on cfg.Brokers. It does not connect until the first Publish.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rt := newTransport(cfg.TLS, cfg.SASL)
	newWriter := func(linger time.Duration) *kafkago.Writer {
		return &kafkago.Writer{
			Addr:                   kafkago.TCP(cfg.Brokers...),
			Transport:              rt,
			Balancer:               &kafkago.Hash{},
			BatchTimeout:           linger,
			BatchSize:              cmp.Or(cfg.BatchSize, DefaultBatchSize),
			RequiredAcks:           kafkago.RequireAll,
			Compression:            compressions[cmp.Or(cfg.Compression, DefaultCompression)],
			AllowAutoTopicCreation: cfg.AllowAutoTopicCreation,
			ErrorLogger:            errorLogger(cfg.Logger),
		}
	}
	linger := cmp.Or(cfg.BatchTimeout, DefaultBatchTimeout)
	return &Publisher{
		w:       newWriter(linger),
		bulk:    newWriter(min(linger, bulkLinger)),
		rt:      rt,
		timeout: cmp.Or(cfg.PublishTimeout, DefaultPublishTimeout),
		log:     cfg.Logger,
	}, nil
}

// Publish writes msgs to topic as one batch and returns when the brokers acknowledged them
// all. Each record's key is the metadata job_id, else the UUID; metadata becomes headers. On
// error some messages may be stored: publishing them again is safe for consumers that are
// idempotent by job id (delivery is at least once anyway).
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	if topic == "" {
		return errors.New("kafka publish: topic is empty (name the topic to publish to)")
	}
	records := make([]kafkago.Message, len(msgs))
	for i, msg := range msgs {
		records[i] = toRecord(topic, msg)
	}
	// The messages' contexts give values (trace ids) but not cancellation: a handler that
	// publishes during shutdown must still get its messages stored.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msgs[0].Context()), p.timeout)
	defer cancel()
	w := p.w
	if len(records) > 1 {
		w = p.bulk
	}
	if err := w.WriteMessages(ctx, records...); err != nil {
		return fmt.Errorf("publish %d message(s) to %s: %w (check the brokers and that the topic exists; publishing again is safe)", len(msgs), topic, err)
	}
	return nil
}

// Close waits for Publish calls under way, flushes and closes the writer; later Publish calls
// fail. It is idempotent.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := errors.Join(p.w.Close(), p.bulk.Close())
	closeTransport(p.rt)
	if err != nil {
		return fmt.Errorf("close kafka publisher: %w", err)
	}
	return nil
}

// errorLogger adapts zerolog to kafka-go's error logger. kafka-go retries what it reports
// (a rebalance under way, a broker briefly gone), so its reports are logged at info level;
// failures that reach infleet are logged where they surface.
func errorLogger(log zerolog.Logger) kafkago.LoggerFunc {
	return func(format string, args ...any) {
		log.Info().Str("component", "kafka-go").Msg(strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}
