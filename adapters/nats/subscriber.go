package nats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
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

// gatherWindow is how long acquire waits for more free slots before a small pull.
const gatherWindow = 2 * time.Millisecond

// retryWaitMax caps the wait between attempts after a failed pull.
const retryWaitMax = 5 * time.Second

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
	cfg SubscriberConfig
	js  jetstream.JetStream
	log zerolog.Logger

	mu      sync.Mutex
	closed  bool
	closing context.Context // cancelled when Close begins
	close   context.CancelFunc
	running sync.WaitGroup // one per subscription still running
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
	s := &Subscriber{cfg: cfg, js: js, log: cfg.Logger}
	s.closing, s.close = context.WithCancel(context.Background())
	return s, nil
}

// SubscribeInitialize creates topic's stream and the group's consumer on it if they do not
// exist, so messages published from now on wait for the group. It is idempotent.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.isClosed() {
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	s.running.Add(1)
	s.mu.Unlock()

	cons, err := s.consumer(ctx, topic)
	if err != nil {
		s.running.Done()
		return nil, err
	}
	sub := &subscription{
		s:       s,
		topic:   topic,
		log:     s.log.With().Str("topic", topic).Str("consumer", s.cfg.Group).Logger(),
		cons:    cons,
		out:     make(chan *message.Message),
		slots:   make(chan struct{}, s.cfg.MaxInFlight),
		abandon: make(chan struct{}),
	}
	// stop ends fetching: Subscribe's ctx ended or Close began.
	sub.stop, sub.cancelStop = context.WithCancel(ctx)
	sub.unhookStop = context.AfterFunc(s.closing, sub.cancelStop)
	// Messages' contexts end with Subscribe's ctx, or when shutdown cancels them.
	sub.msgCtx, sub.cancelMsgs = context.WithCancel(ctx)
	go sub.run()
	return sub.out, nil
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

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops every subscription: no more messages are fetched; handed-out messages get
// DrainTimeout to finish, then their contexts are cancelled and handlers get CloseTimeout to
// answer. Messages never handed out are given back at once; messages not answered in time
// are left to JetStream to redeliver after AckWait. Nothing is lost. Close returns when every
// subscription's channel is closed; it is idempotent, and Subscribe fails after it.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.close()
	s.running.Wait()
	return nil
}

// subscription is one Subscribe call: a pull loop and one goroutine per message held.
type subscription struct {
	s     *Subscriber
	topic string
	log   zerolog.Logger
	cons  jetstream.Consumer
	out   chan *message.Message

	slots chan struct{} // one token per message held; capacity MaxInFlight

	stop       context.Context
	cancelStop context.CancelFunc
	unhookStop func() bool

	msgCtx     context.Context
	cancelMsgs context.CancelFunc

	abandon  chan struct{} // closed when shutdown stops waiting for handlers
	handlers sync.WaitGroup
}

// run pulls messages while there is room for them, then shuts the subscription down.
func (sub *subscription) run() {
	defer sub.s.running.Done()
	defer sub.unhookStop()
	defer sub.cancelStop()

	wait := time.Duration(0)
	for {
		n := sub.acquire()
		if n == 0 {
			break
		}
		err := sub.pull(n)
		if err == nil {
			wait = 0
			continue
		}
		if sub.s.cfg.Conn.IsClosed() {
			sub.log.Error().Err(err).Msg("nats connection closed; subscription ends")
			break
		}
		wait = min(max(2*wait, 100*time.Millisecond), retryWaitMax)
		sub.log.Warn().Err(err).Dur("retry_in", wait).Msg("pulling messages failed; retrying")
		select {
		case <-time.After(wait):
		case <-sub.stop.Done():
		}
		if sub.stop.Err() != nil {
			break
		}
		// The stream or consumer may have been deleted: put them back.
		ctx, cancel := context.WithTimeout(sub.stop, retryWaitMax)
		if cons, cerr := sub.s.consumer(ctx, sub.topic); cerr == nil {
			sub.cons = cons
		}
		cancel()
	}
	sub.shutdown()
}

// acquire waits for at least one free slot and takes every free slot; it returns how many it
// took, 0 when the subscription stops. Under load slots free one at a time, and one pull per
// message would cost a round trip each: when fewer than a quarter of the slots are free it
// gathers more for up to gatherWindow, a delay no job notices.
func (sub *subscription) acquire() int {
	if sub.stop.Err() != nil {
		return 0
	}
	select {
	case sub.slots <- struct{}{}:
	case <-sub.stop.Done():
		return 0
	}
	n := 1 + sub.grab(cap(sub.slots)-1)
	if want := cap(sub.slots) / 4; n < want {
		t := time.NewTimer(gatherWindow)
		defer t.Stop()
	gather:
		for n < want {
			select {
			case sub.slots <- struct{}{}:
				n++
			case <-t.C:
				break gather
			case <-sub.stop.Done():
				break gather
			}
		}
		n += sub.grab(cap(sub.slots) - n)
	}
	return n
}

// grab takes up to limit free slots without waiting and returns how many it took.
func (sub *subscription) grab(limit int) int {
	n := 0
	for n < limit {
		select {
		case sub.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (sub *subscription) release(n int) {
	for range n {
		<-sub.slots
	}
}

// pull asks for n messages, for which slots are taken, and starts a goroutine for each that
// arrives within pullExpiry. A pull request is never abandoned half-way: a message that
// arrives while the subscription stops is given back rather than left waiting for AckWait.
func (sub *subscription) pull(n int) error {
	batch, err := sub.cons.Fetch(n, jetstream.FetchMaxWait(pullExpiry))
	if err != nil {
		sub.release(n)
		return err
	}
	got := 0
	for m := range batch.Messages() {
		got++
		sub.handlers.Add(1)
		go sub.hold(m)
	}
	sub.release(n - got)
	return batch.Error()
}

// hold hands m to the channel and waits for its answer, reporting progress to JetStream all
// the while so that m is not redelivered while it is held.
func (sub *subscription) hold(m jetstream.Msg) {
	defer sub.handlers.Done()
	defer sub.release(1)

	meta, err := m.Metadata()
	if err != nil {
		sub.log.Error().Err(err).Msg("delivered message has no JetStream metadata; giving it back")
		sub.nak(m, 0)
		return
	}
	msg := fromJetStream(m, meta)
	ctx, cancel := context.WithCancel(sub.msgCtx)
	defer cancel()
	msg.SetContext(ctx)

	progress := time.NewTicker(sub.s.cfg.AckWait / 3)
	defer progress.Stop()

	if sub.stop.Err() != nil {
		sub.nak(m, 0) // arrived while stopping: give it back at once
		return
	}
send:
	for {
		select {
		case sub.out <- msg:
			break send
		case <-sub.stop.Done():
			sub.nak(m, 0)
			return
		case <-progress.C:
			sub.inProgress(m)
		}
	}
	for {
		select {
		case <-msg.Acked():
			sub.ack(m)
			return
		case <-msg.Nacked():
			sub.nak(m, sub.nackDelay(msg))
			return
		case <-progress.C:
			sub.inProgress(m)
		case <-sub.abandon:
			sub.log.Warn().Str("message_uuid", msg.UUID).Dur("redelivery_in", sub.s.cfg.AckWait).
				Msg("handler did not answer before close timed out; JetStream will redeliver the message")
			return
		}
	}
}

func (sub *subscription) ack(m jetstream.Msg) {
	var err error
	if sub.s.cfg.ConfirmAcks {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
		err = m.DoubleAck(ctx)
		cancel()
	} else {
		err = m.Ack()
	}
	if err != nil {
		sub.log.Warn().Err(err).Msg("ack failed; the message will be delivered again")
	}
}

func (sub *subscription) nak(m jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = m.NakWithDelay(delay)
	} else {
		err = m.Nak()
	}
	if err != nil {
		sub.log.Warn().Err(err).Msg("nak failed; the message will be delivered again after the ack wait")
	}
}

func (sub *subscription) inProgress(m jetstream.Msg) {
	if err := m.InProgress(); err != nil {
		sub.log.Warn().Err(err).Msg("progress report failed; the message may be delivered again while it runs")
	}
}

// nackDelay reads the redelivery delay a handler asked for, at nack time.
func (sub *subscription) nackDelay(msg *message.Message) time.Duration {
	d, ok := messages.NackDelay(msg.Metadata)
	if !ok {
		sub.log.Warn().Str("message_uuid", msg.UUID).Str("nack_delay", msg.Metadata.Get(messages.MetaNackDelay)).
			Msg("metadata nack delay is not a Go duration; redelivering at once")
	}
	return d
}

// shutdown runs after fetching stopped: it lets held messages finish within the configured
// bounds, then closes the channel.
func (sub *subscription) shutdown() {
	cfg := sub.s.cfg
	if sub.s.closing.Err() != nil && cfg.DrainTimeout > 0 {
		waitFor(&sub.handlers, cfg.DrainTimeout)
	}
	sub.cancelMsgs()
	if !waitFor(&sub.handlers, cfg.CloseTimeout) {
		close(sub.abandon)
		sub.handlers.Wait()
	}
	close(sub.out)
	sub.log.Debug().Msg("subscription closed")
}

// waitFor waits for wg up to d and reports whether it finished.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
