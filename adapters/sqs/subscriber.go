package sqs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/internal/delivery"
)

// Subscriber defaults.
const (
	// DefaultVisibilityTimeout is how long a received message stays hidden from other
	// consumers; the Subscriber extends it while a handler holds the message.
	DefaultVisibilityTimeout = 60 * time.Second
	// DefaultMaxInFlight bounds the messages one subscription has handed out and not yet seen
	// acked or nacked.
	DefaultMaxInFlight = 64
	// DefaultWaitTime is the long-poll wait of one ReceiveMessage call, SQS's maximum.
	DefaultWaitTime = 20 * time.Second
	// DefaultCloseTimeout bounds how long Close waits for handlers after cancelling their
	// messages' contexts.
	DefaultCloseTimeout = 10 * time.Second
)

// MaxNackDelay is the longest redelivery delay a nack can ask for: SQS's largest visibility
// timeout.
const MaxNackDelay = 12 * time.Hour

// ErrSubscriberClosed is returned by Subscribe and SubscribeInitialize after Close.
var ErrSubscriberClosed = errors.New("sqs subscriber is closed (create a new one)")

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// Client is the SQS client to receive with (required).
	Client *sqs.Client
	// VisibilityTimeout is set on every receive, whole seconds (default
	// DefaultVisibilityTimeout, at least 1 s, at most 12 h). While a handler holds a message
	// the Subscriber extends it every half timeout; when the process dies the message is
	// delivered again once the timeout runs out.
	VisibilityTimeout time.Duration
	// MaxInFlight bounds the messages one subscription (one queue) has received and not yet
	// seen acked or nacked (default DefaultMaxInFlight): the width of the worker pool behind a
	// Watermill router, which runs each message in its own goroutine.
	MaxInFlight int
	// Pollers is how many ReceiveMessage long polls one subscription runs at once (default
	// MaxInFlight/10, at least 1, at most MaxInFlight).
	Pollers int
	// WaitTime is the long-poll wait of one receive, whole seconds (default DefaultWaitTime,
	// at most 20 s). Close interrupts a poll under way.
	WaitTime time.Duration
	// DrainTimeout is how long Close lets handed-out messages finish, their contexts still
	// live, before it cancels those contexts (default 0: at once). Stopping the router's
	// handlers first is the better place for a graceful drain; this is the fallback.
	DrainTimeout time.Duration
	// CloseTimeout is how long Close then waits for handlers to ack or nack (default
	// DefaultCloseTimeout). Messages still held after it are left to SQS, which delivers them
	// again when their visibility timeout runs out.
	CloseTimeout time.Duration
	// Logger receives the subscriber's log lines; the zero value discards them.
	Logger zerolog.Logger
}

// Validate reports every problem in cfg, each naming the field and the fix.
func (cfg SubscriberConfig) Validate() error {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("sqs subscriber: Client is nil (build one with sqs.NewFromConfig)"))
	}
	if cfg.VisibilityTimeout < 0 || (cfg.VisibilityTimeout > 0 && cfg.VisibilityTimeout < time.Second) || cfg.VisibilityTimeout > MaxNackDelay {
		errs = append(errs, fmt.Errorf("sqs subscriber: VisibilityTimeout is %s (use 1s to 12h, or 0 for %s)", cfg.VisibilityTimeout, DefaultVisibilityTimeout))
	}
	if cfg.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("sqs subscriber: MaxInFlight is %d (use a positive number, or 0 for %d)", cfg.MaxInFlight, DefaultMaxInFlight))
	}
	if cfg.Pollers < 0 {
		errs = append(errs, fmt.Errorf("sqs subscriber: Pollers is %d (use a positive number, or 0 for MaxInFlight/10)", cfg.Pollers))
	}
	if cfg.WaitTime < 0 || cfg.WaitTime > DefaultWaitTime {
		errs = append(errs, fmt.Errorf("sqs subscriber: WaitTime is %s (use up to 20s, or 0 for %s)", cfg.WaitTime, DefaultWaitTime))
	}
	if cfg.DrainTimeout < 0 || cfg.CloseTimeout < 0 {
		errs = append(errs, errors.New("sqs subscriber: DrainTimeout and CloseTimeout cannot be negative"))
	}
	return errors.Join(errs...)
}

// Subscriber is a Watermill message.Subscriber on SQS standard queues: a topic is a queue
// name. Each subscription long-polls its queue with several concurrent receives of up to ten
// messages and hands out up to MaxInFlight messages at once, each on its own: a message held
// or nacked never holds back the others, and order is not kept. Acks become batched
// DeleteMessageBatch calls; a nack makes the message visible again at once, or after the
// delay in messages.MetaNackDelay. While a message is held its visibility timeout is extended,
// so a long job is not delivered twice; a message whose holder dies comes back when the
// timeout runs out. Delivery is at least once. Every process subscribed to a queue shares its
// messages (there are no consumer groups). Its methods are safe for concurrent use.
type Subscriber struct {
	cfg    SubscriberConfig
	client *sqs.Client
	urls   *urls
	log    zerolog.Logger
	subs   *delivery.Group

	dead deadLetters
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber on cfg.Client.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.VisibilityTimeout = cmp.Or(cfg.VisibilityTimeout, DefaultVisibilityTimeout).Round(time.Second)
	cfg.MaxInFlight = cmp.Or(cfg.MaxInFlight, DefaultMaxInFlight)
	cfg.Pollers = min(cmp.Or(cfg.Pollers, max(1, cfg.MaxInFlight/maxBatchEntries)), cfg.MaxInFlight)
	cfg.WaitTime = cmp.Or(cfg.WaitTime, DefaultWaitTime).Round(time.Second)
	cfg.CloseTimeout = cmp.Or(cfg.CloseTimeout, DefaultCloseTimeout)
	return &Subscriber{cfg: cfg, client: cfg.Client, urls: newURLs(cfg.Client), log: cfg.Logger, subs: delivery.NewGroup()}, nil
}

// SubscribeInitialize creates queue topic, with SQS's default attributes, if it does not
// exist. infleet itself never calls it: its queues come from EnsureQueues with their redrive
// policy, and start-up checks them with CheckQueues. It is idempotent.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.subs.Closed() {
		return ErrSubscriberClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
	defer cancel()
	_, err := ensureQueue(ctx, s.client, topic, nil)
	return err
}

// Subscribe returns an unbuffered channel of queue topic's messages; the queue must exist.
// Every message must be acked or nacked. Each carries MetaReceiveCount and MetaMessageID, and
// a context that ends when it is acked or nacked, when ctx ends, or when Close gives up
// waiting. The channel is closed after ctx ends or Close is called, once every message handed
// out was answered or given up on.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if !s.subs.Join() {
		return nil, ErrSubscriberClosed
	}
	url, err := s.urls.get(ctx, topic)
	if err != nil {
		s.subs.Leave()
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	log := s.log.With().Str("topic", topic).Logger()
	src := s.newSource(topic, url, log)
	e := s.subs.Start(ctx, delivery.Config{
		MaxInFlight:  s.cfg.MaxInFlight,
		MaxFetch:     maxBatchEntries,
		Fetchers:     s.cfg.Pollers,
		Lease:        s.cfg.VisibilityTimeout,
		ExtendBatch:  maxBatchEntries,
		DrainTimeout: s.cfg.DrainTimeout,
		CloseTimeout: s.cfg.CloseTimeout,
		Finish:       src.finish,
		Logger:       log,
	}, src)
	return e.Messages(), nil
}

// newSource returns the source of a subscription to queue topic at url, with its batchers
// running: its finish stops them.
func (s *Subscriber) newSource(topic, url string, log zerolog.Logger) *source {
	src := &source{s: s, topic: topic, url: url, log: log}
	src.deleter = newBatcher(log, "delete", func(ctx context.Context, b []batchEntry) ([]types.BatchResultErrorEntry, error) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(b))
		for i, e := range b {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(e.id), ReceiptHandle: aws.String(e.receipt)}
		}
		out, err := s.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	})
	src.changer = newBatcher(log, "change visibility", func(ctx context.Context, b []batchEntry) ([]types.BatchResultErrorEntry, error) {
		return s.changeVisibility(ctx, url, b)
	})
	return src
}

// changeVisibility sends one ChangeMessageVisibilityBatch call for b (at most ten entries).
func (s *Subscriber) changeVisibility(ctx context.Context, url string, b []batchEntry) ([]types.BatchResultErrorEntry, error) {
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(b))
	for i, e := range b {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(e.id), ReceiptHandle: aws.String(e.receipt), VisibilityTimeout: e.visibility}
	}
	out, err := s.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
	if err != nil {
		return nil, err
	}
	return out.Failed, nil
}

// Close stops every subscription: no more messages are received (a long poll under way is
// interrupted); handed-out messages get DrainTimeout to finish, then their contexts are
// cancelled and handlers get CloseTimeout to answer. Messages never handed out are made
// visible again at once; pending acks and nacks are sent; messages not answered in time stop
// being extended and come back when their visibility timeout runs out. Nothing is lost. Close
// returns when every subscription's channel is closed; it is idempotent, and Subscribe fails
// after it. It does not close the client.
func (s *Subscriber) Close() error {
	s.subs.Close()
	return nil
}
