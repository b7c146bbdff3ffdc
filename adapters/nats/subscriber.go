package nats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/internal/delivery"
)

// Subscriber defaults.
const (
	// DefaultGroup is the consumer group of infleet's workers.
	DefaultGroup = "infleet-workers"
	// DefaultMaxInFlight bounds the messages one subscription has handed out and not yet seen
	// acked or nacked.
	DefaultMaxInFlight = 256
	// DefaultAckWait is how long JetStream waits for an answer before it redelivers a message.
	DefaultAckWait = 60 * time.Second
	// DefaultMaxAckPending bounds the unacknowledged messages of a whole group, every process
	// of the fleet together.
	DefaultMaxAckPending = 1 << 16
	// DefaultCloseTimeout bounds how long Close waits for handlers after cancelling their
	// messages' contexts.
	DefaultCloseTimeout = 10 * time.Second
)

// pullExpiry bounds one pull request: how long it waits on an idle topic before the next one,
// and so how long stopping waits for the request under way.
const pullExpiry = time.Second

// consumerTimeout bounds putting back a consumer after a failed pull.
const consumerTimeout = 5 * time.Second

// wqConflictCodes are JetStream's answers when a second consumer group is created on a
// work-queue stream.
var wqConflictCodes = []jetstream.ErrorCode{10099, 10100}

// ErrSubscriberClosed is returned by Subscribe and SubscribeInitialize after Close.
var ErrSubscriberClosed = errors.New("nats subscriber is closed (create a new one)")

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// Conn is the NATS connection to consume on (required). The Subscriber does not close it.
	Conn *natsgo.Conn
	// Group names the durable consumer (default DefaultGroup). All subscribers with the same
	// Group share a topic's messages, each message going to one of them. A work-queue stream
	// admits one group: a second group on the same topic is refused.
	Group string
	// MaxInFlight bounds the messages one subscription has handed out and not yet seen acked or
	// nacked (default DefaultMaxInFlight). It is the width of the worker pool behind a Watermill
	// router, which runs each message in its own goroutine.
	MaxInFlight int
	// MaxAckPending bounds the unacknowledged messages of the whole group, all processes
	// together (default DefaultMaxAckPending, and never below MaxInFlight). It is a property of
	// the shared consumer, so the last subscriber to start sets it.
	MaxAckPending int
	// AckWait is how long JetStream waits for an answer before it redelivers a message (default
	// DefaultAckWait). While a handler holds a message the Subscriber reports progress every
	// AckWait/3, so a long job is not redelivered while it runs.
	AckWait time.Duration
	// DrainTimeout is how long Close lets handed-out messages finish, their contexts still live,
	// before it cancels those contexts (default 0: at once). Stopping the router's handlers
	// first is the better place for a graceful drain; this is the fallback.
	DrainTimeout time.Duration
	// CloseTimeout is how long Close then waits for handlers to ack or nack (default
	// DefaultCloseTimeout). Messages still held after it are left to JetStream, which redelivers
	// them after AckWait.
	CloseTimeout time.Duration
	// ConfirmAcks makes each Ack wait for JetStream's confirmation (DoubleAck) before the
	// message's slot is freed. The default sends acks without waiting: an ack lost with a
	// crashing process only means one more delivery.
	ConfirmAcks bool
	// Logger receives the subscriber's log lines; the zero value discards them.
	Logger zerolog.Logger
}

// Validate reports every problem in cfg, each naming the field and the fix.
func (cfg SubscriberConfig) Validate() error {
	var errs []error
	if cfg.Conn == nil {
		errs = append(errs, errors.New("nats subscriber: Conn is nil (pass the connection from Server.Connect)"))
	}
	if cfg.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("nats subscriber: MaxInFlight is %d (use a positive number, or 0 for %d)", cfg.MaxInFlight, DefaultMaxInFlight))
	}
	if cfg.MaxAckPending < 0 {
		errs = append(errs, fmt.Errorf("nats subscriber: MaxAckPending is %d (use a positive number, or 0 for %d)", cfg.MaxAckPending, DefaultMaxAckPending))
	}
	if cfg.AckWait < 0 || (cfg.AckWait > 0 && cfg.AckWait < 30*time.Millisecond) {
		errs = append(errs, fmt.Errorf("nats subscriber: AckWait is %s (use at least 30ms, or 0 for %s)", cfg.AckWait, DefaultAckWait))
	}
	if cfg.DrainTimeout < 0 || cfg.CloseTimeout < 0 {
		errs = append(errs, errors.New("nats subscriber: DrainTimeout and CloseTimeout cannot be negative"))
	}
	if cfg.Group != "" && safeName(cfg.Group) != cfg.Group {
		errs = append(errs, fmt.Errorf("nats subscriber: Group %q may hold only letters, digits, '-' and '_'", cfg.Group))
	}
	return errors.Join(errs...)
}

// Subscriber is a Watermill message.Subscriber on JetStream pull consumers. Each subscription
// hands out up to MaxInFlight messages at once, without waiting for earlier ones to be acked,
// so a router runs that many handlers in parallel; order is not kept. Delivery is at least
// once: a message is removed only when acked, and one not acked for whatever reason is
// delivered again. Its methods are safe for concurrent use.
type Subscriber struct {
	cfg  SubscriberConfig
	js   jetstream.JetStream
	log  zerolog.Logger
	subs *delivery.Group
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber on cfg.Conn.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Group = cmp.Or(cfg.Group, DefaultGroup)
	cfg.MaxInFlight = cmp.Or(cfg.MaxInFlight, DefaultMaxInFlight)
	cfg.MaxAckPending = max(cmp.Or(cfg.MaxAckPending, DefaultMaxAckPending), cfg.MaxInFlight)
	cfg.AckWait = cmp.Or(cfg.AckWait, DefaultAckWait)
	cfg.CloseTimeout = cmp.Or(cfg.CloseTimeout, DefaultCloseTimeout)
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("nats subscriber: %w", err)
	}
	return &Subscriber{cfg: cfg, js: js, log: cfg.Logger, subs: delivery.NewGroup()}, nil
}

// SubscribeInitialize creates topic's stream and the group's consumer on it if they do not
// exist, so messages published from now on wait for the group. It is idempotent.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.subs.Closed() {
		return ErrSubscriberClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
	defer cancel()
	_, err := s.consumer(ctx, topic)
	return err
}

// Subscribe ensures topic's stream and the group's durable consumer, and returns an unbuffered
// channel of its messages. Every message must be acked or nacked; a nack is redelivered at
// once, or after the duration in its metadata key messages.MetaNackDelay when the handler set
// one. Each message carries MetaDeliveryCount and a context that ends when it is acked or
// nacked, when ctx ends, or when Close gives up waiting. The channel is closed after ctx ends
// or Close is called, once every message handed out was answered or given up on.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if !s.subs.Join() {
		return nil, ErrSubscriberClosed
	}
	cons, err := s.consumer(ctx, topic)
	if err != nil {
		s.subs.Leave()
		return nil, err
	}
	log := s.log.With().Str("topic", topic).Str("consumer", s.cfg.Group).Logger()
	src := &source{s: s, topic: topic, log: log, cons: cons}
	e := s.subs.Start(ctx, delivery.Config{
		MaxInFlight:  s.cfg.MaxInFlight,
		Lease:        s.cfg.AckWait,
		DrainTimeout: s.cfg.DrainTimeout,
		CloseTimeout: s.cfg.CloseTimeout,
		Logger:       log,
	}, src)
	return e.Messages(), nil
}

// consumer creates topic's stream and the group's consumer on it, or binds to them.
func (s *Subscriber) consumer(ctx context.Context, topic string) (jetstream.Consumer, error) {
	if err := ensureStream(ctx, s.js, topic); err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	stream := StreamName(topic)
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       s.cfg.Group,
		Description:   "infleet consumer group " + s.cfg.Group + " on " + topic,
		FilterSubject: topic,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		MaxDeliver:    -1, // attempts are counted and bounded by the pipeline, not by JetStream
	})
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == wqConflictCodes[0] || apiErr.ErrorCode == wqConflictCodes[1]) {
			return nil, fmt.Errorf("subscribe to %s as group %s: another consumer group already reads stream %s, and a work-queue stream admits one (give every worker the same group): %w", topic, s.cfg.Group, stream, err)
		}
		return nil, fmt.Errorf("subscribe to %s: create consumer %s on stream %s: %w", topic, s.cfg.Group, stream, err)
	}
	return cons, nil
}

// Close stops every subscription: no more messages are fetched; handed-out messages get
// DrainTimeout to finish, then their contexts are cancelled and handlers get CloseTimeout to
// answer. Messages never handed out are given back at once; messages not answered in time
// are left to JetStream to redeliver after AckWait. Nothing is lost. Close returns when every
// subscription's channel is closed; it is idempotent, and Subscribe fails after it.
func (s *Subscriber) Close() error {
	s.subs.Close()
	return nil
}
