package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/infleet/infleet/messages"
)

// Subscriber defaults.
const (
	// DefaultGroup is the consumer group of infleet's workers.
	DefaultGroup = "infleet-workers"
	// DefaultMaxInFlight bounds the messages one subscription has handed out and not yet seen
	// acked (a nacked message waiting out its delay counts).
	DefaultMaxInFlight = 256
	// DefaultCommitInterval is how often acked offsets are committed.
	DefaultCommitInterval = time.Second
	// DefaultMaxWait is how long one fetch waits on an idle partition.
	DefaultMaxWait = 500 * time.Millisecond
	// DefaultHeartbeatInterval is how often a member heartbeats, and so how soon it learns of
	// a rebalance.
	DefaultHeartbeatInterval = 3 * time.Second
	// DefaultSessionTimeout is how long the coordinator waits for a silent member (one that
	// was SIGKILLed) before giving its partitions to others.
	DefaultSessionTimeout = 30 * time.Second
	// DefaultRebalanceTimeout is how long the coordinator waits for members to rejoin.
	DefaultRebalanceTimeout = 30 * time.Second
	// DefaultCloseTimeout bounds how long Close waits for handlers after cancelling their
	// messages' contexts.
	DefaultCloseTimeout = 10 * time.Second
	// DefaultTopicPartitions is the partition count of topics created by CreateMissingTopics.
	DefaultTopicPartitions = 3
	// DefaultRetrySuffix names a topic's retry topic: "<topic>.retry".
	DefaultRetrySuffix = ".retry"
	// DefaultRetryInFlight bounds the retry records one subscription holds while they wait
	// for their time; past it, fetching from the retry topic pauses.
	DefaultRetryInFlight = 1024
)

// commitTimeout bounds one commit request.
const commitTimeout = 10 * time.Second

// retryWaitMax caps the wait between attempts after a failed fetch.
const retryWaitMax = 5 * time.Second

// ErrSubscriberClosed is returned by Subscribe and SubscribeInitialize after Close.
var ErrSubscriberClosed = errors.New("kafka subscriber is closed (create a new one)")

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// Brokers are the bootstrap addresses, host:port (required).
	Brokers []string
	// Group is the consumer group (default DefaultGroup). Subscribers in one group share each
	// topic's partitions; a new group starts at the oldest retained offset.
	Group string
	// MaxInFlight bounds the messages one subscription has handed out and not yet seen acked
	// (default DefaultMaxInFlight): the width of the worker pool behind a Watermill router.
	MaxInFlight int
	// CommitInterval is how often the acked commit points are committed (default
	// DefaultCommitInterval); they are committed on close too. A crash redelivers at most
	// this much acked work.
	CommitInterval time.Duration
	// MaxWait is how long one fetch waits on an idle partition (default DefaultMaxWait).
	MaxWait time.Duration
	// HeartbeatInterval, SessionTimeout and RebalanceTimeout tune group membership (defaults
	// DefaultHeartbeatInterval, DefaultSessionTimeout, DefaultRebalanceTimeout).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	// DrainTimeout is how long Close lets handed-out messages finish, their contexts live,
	// before cancelling those contexts (default 0: at once).
	DrainTimeout time.Duration
	// CloseTimeout is how long Close then waits for handlers to answer (default
	// DefaultCloseTimeout). Messages not answered in time are not committed: the group
	// delivers them again.
	CloseTimeout time.Duration
	// CreateMissingTopics makes Subscribe and SubscribeInitialize create a missing topic with
	// TopicPartitions partitions (default DefaultTopicPartitions) and replication 1. Off by
	// default: production topics come from EnsureTopics (infleet init).
	CreateMissingTopics bool
	TopicPartitions     int
	// RetrySuffix names the retry topic of each subscribed topic, topic+RetrySuffix (default
	// DefaultRetrySuffix). A message nacked with a delay (messages.MetaNackDelay) is written
	// there with its not-before time and origin in headers, then acked on its own topic, so
	// its partition's commit point moves on; Subscribe(topic) also consumes the retry topic
	// (group Group+RetrySuffix) and writes each record back to its origin once due. Where the
	// retry topic does not exist, nacked messages wait in memory instead, holding the commit
	// point.
	RetrySuffix string
	// RetryInFlight bounds the retry records held while they wait (default
	// DefaultRetryInFlight).
	RetryInFlight int
	// MemoryRetries keeps every nacked message in memory until its delay ends (no retry
	// topic): its partition's commit point waits for it.
	MemoryRetries bool
	// Logger receives the subscriber's log lines; the zero value discards them.
	Logger zerolog.Logger
}

// Validate reports every problem in cfg, each naming the field and the fix.
func (cfg SubscriberConfig) Validate() error {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("kafka subscriber: Brokers is empty (give at least one host:port)"))
	}
	if cfg.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("kafka subscriber: MaxInFlight is %d (use a positive number, or 0 for %d)", cfg.MaxInFlight, DefaultMaxInFlight))
	}
	if cfg.RetryInFlight < 0 {
		errs = append(errs, fmt.Errorf("kafka subscriber: RetryInFlight is %d (use a positive number, or 0 for %d)", cfg.RetryInFlight, DefaultRetryInFlight))
	}
	if cfg.TopicPartitions < 0 {
		errs = append(errs, fmt.Errorf("kafka subscriber: TopicPartitions is %d (use a positive number, or 0 for %d)", cfg.TopicPartitions, DefaultTopicPartitions))
	}
	for _, d := range []time.Duration{cfg.CommitInterval, cfg.MaxWait, cfg.HeartbeatInterval, cfg.SessionTimeout, cfg.RebalanceTimeout, cfg.DrainTimeout, cfg.CloseTimeout} {
		if d < 0 {
			errs = append(errs, errors.New("kafka subscriber: durations cannot be negative (use 0 for the defaults)"))
			break
		}
	}
	return errors.Join(errs...)
}

// Subscriber is a Watermill message.Subscriber on kafka-go consumer groups: one group member
// (kafka-go Reader) per Subscribe call. Each subscription hands out up to MaxInFlight
// messages at once, in fetch order, and commits per partition only offsets below which
// everything was acked; answers come in any order. Delivery is at least once. A message
// never answered holds its partition's commit point, and the acked offsets behind it are
// remembered (about 9 bytes each) until it is answered. Every subscription is a member of
// the same group, so a member joining on one topic rebalances the group's other topics too.
// Its methods are safe for concurrent use.
type Subscriber struct {
	cfg SubscriberConfig
	log zerolog.Logger

	// writer writes retry records, forwards due ones and records dead-letter removals.
	writer *kafkago.Writer

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

// NewSubscriber returns a Subscriber on cfg.Brokers. It does not connect until Subscribe.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Group = cmp.Or(cfg.Group, DefaultGroup)
	cfg.MaxInFlight = cmp.Or(cfg.MaxInFlight, DefaultMaxInFlight)
	cfg.CommitInterval = cmp.Or(cfg.CommitInterval, DefaultCommitInterval)
	cfg.MaxWait = cmp.Or(cfg.MaxWait, DefaultMaxWait)
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, DefaultHeartbeatInterval)
	cfg.SessionTimeout = cmp.Or(cfg.SessionTimeout, DefaultSessionTimeout)
	cfg.RebalanceTimeout = cmp.Or(cfg.RebalanceTimeout, DefaultRebalanceTimeout)
	cfg.CloseTimeout = cmp.Or(cfg.CloseTimeout, DefaultCloseTimeout)
	cfg.TopicPartitions = cmp.Or(cfg.TopicPartitions, DefaultTopicPartitions)
	cfg.RetrySuffix = cmp.Or(cfg.RetrySuffix, DefaultRetrySuffix)
	cfg.RetryInFlight = cmp.Or(cfg.RetryInFlight, DefaultRetryInFlight)
	s := &Subscriber{cfg: cfg, log: cfg.Logger, writer: newRecordWriter(cfg.Brokers, cfg.Logger)}
	s.closing, s.close = context.WithCancel(context.Background())
	return s, nil
}

// SubscribeInitialize creates topic when CreateMissingTopics is set; otherwise it does
// nothing. A new group reads from the oldest offset, so nothing published before its first
// Subscribe is missed. It is idempotent.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.isClosed() {
		return ErrSubscriberClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	return s.ensureTopic(ctx, topic)
}

func (s *Subscriber) ensureTopic(ctx context.Context, topic string) error {
	if !s.cfg.CreateMissingTopics {
		return nil
	}
	if err := EnsureTopics(ctx, s.cfg.Brokers, s.cfg.TopicPartitions, 1, topic); err != nil {
		return fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	return nil
}

// Subscribe joins the group on topic and returns an unbuffered channel of its messages. Every
// message must be acked or nacked. A message nacked without a delay is handed out again at
// once; one nacked with a Go duration in its metadata key messages.MetaNackDelay goes to the
// retry topic (see SubscriberConfig.RetrySuffix) and comes back on topic after the delay,
// while its partition moves on. Subscribe also consumes topic's retry topic, forwarding
// each record back once due. Each message carries MetaPartition and
// MetaOffset, and a context that ends when it is answered, when ctx ends or when Close gives
// up waiting. The channel is closed after ctx ends or Close is called, once the handed-out
// messages were answered or given up on and the acked offsets committed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	s.running.Add(1)
	s.mu.Unlock()

	if topic == "" {
		s.running.Done()
		return nil, errors.New("kafka subscribe: topic is empty (name the topic to read)")
	}
	if err := s.ensureTopic(ctx, topic); err != nil {
		s.running.Done()
		return nil, err
	}
	sub := s.start(ctx, topic, s.cfg.Group, s.cfg.MaxInFlight)
	if !s.cfg.MemoryRetries && !strings.HasSuffix(topic, s.cfg.RetrySuffix) {
		retryTopic := topic + s.cfg.RetrySuffix
		if err := s.retryTopicReady(ctx, retryTopic); err != nil {
			sub.log.Warn().Err(err).Str("retry_topic", retryTopic).
				Msg("no retry topic: nacked messages wait in memory and hold their partition's commit point (run infleet init)")
		} else {
			sub.retryTopic = retryTopic
			s.mu.Lock()
			s.running.Add(1)
			s.mu.Unlock()
			fwd := s.start(ctx, retryTopic, s.cfg.Group+s.cfg.RetrySuffix, s.cfg.RetryInFlight)
			fwd.origin = topic
		}
	}
	return sub.out, nil
}

// start runs one group member on topic handing out up to inFlight messages. The caller has
// counted it in s.running.
func (s *Subscriber) start(ctx context.Context, topic, group string, inFlight int) *subscription {
	log := s.log.With().Str("topic", topic).Str("group", group).Logger()
	reader := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           s.cfg.Brokers,
		GroupID:           group,
		Topic:             topic,
		StartOffset:       kafkago.FirstOffset,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           s.cfg.MaxWait,
		QueueCapacity:     inFlight,
		HeartbeatInterval: s.cfg.HeartbeatInterval,
		SessionTimeout:    s.cfg.SessionTimeout,
		RebalanceTimeout:  s.cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		ErrorLogger:       errorLogger(log),
	})
	sub := &subscription{
		s:      s,
		topic:  topic,
		log:    log,
		reader: reader,
		cp:     newCheckpoints(),
		out:    make(chan *message.Message),
		slots:  make(chan struct{}, inFlight),
		idle:   make(chan heldMessage),
	}
	// stop ends fetching: Subscribe's ctx ended or Close began.
	sub.stop, sub.cancelStop = context.WithCancel(ctx)
	sub.unhookStop = context.AfterFunc(s.closing, sub.cancelStop)
	sub.msgCtx, sub.cancelMsgs = context.WithCancel(ctx)
	context.AfterFunc(sub.msgCtx, func() { sub.msgsEnded.Store(true); sub.signalHolders() })
	sub.commitCtx, sub.stopCommits = context.WithCancel(context.Background())
	sub.commitsDone = make(chan struct{})
	go sub.commitLoop()
	go sub.run()
	return sub
}

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops every subscription: no more messages are fetched; handed-out messages get
// DrainTimeout to finish, then their contexts are cancelled and handlers get CloseTimeout to
// answer; the acked commit points are committed and the group is left. Messages not answered
// are not committed, so the group delivers them again. Close returns when every
// subscription's channel is closed; it is idempotent, and Subscribe fails after it.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.close()
	s.running.Wait()
	if err := s.writer.Close(); err != nil {
		return fmt.Errorf("close kafka subscriber: %w", err)
	}
	return nil
}

// subscription is one Subscribe call: a fetch loop, a commit loop and one goroutine per
// message held.
type subscription struct {
	s      *Subscriber
	topic  string
	log    zerolog.Logger
	reader *kafkago.Reader
	cp     *checkpoints
	out    chan *message.Message

	// retryTopic is where messages nacked with a delay go; empty: they wait in memory.
	retryTopic string
	// origin is set on a retry topic's subscription: records are not handed out but written
	// back to their origin topic (this one, unless a header names another) once due.
	origin string

	slots chan struct{}    // one token per message held; capacity MaxInFlight
	idle  chan heldMessage // holders waiting for a message to hold; closed by shutdown

	stop       context.Context
	cancelStop context.CancelFunc
	unhookStop func() bool

	msgCtx     context.Context
	cancelMsgs context.CancelFunc

	commitCtx   context.Context
	stopCommits context.CancelFunc
	commitsDone chan struct{}

	// msgsEnded is set when msgCtx ends, gaveUp when shutdown stops waiting for handlers;
	// holders learn of either through their own signal channel, so that waiting holders do
	// not all contend on one shared channel.
	msgsEnded, gaveUp atomic.Bool
	signalsMu         sync.Mutex
	signals           []chan struct{} // one per holder, capacity 1
	handlers          sync.WaitGroup
}

// run fetches messages while there is room for them, then shuts the subscription down.
func (sub *subscription) run() {
	defer sub.s.running.Done()
	defer sub.unhookStop()
	defer sub.cancelStop()

	wait := time.Duration(0)
	for {
		select {
		case sub.slots <- struct{}{}:
		case <-sub.stop.Done():
		}
		if sub.stop.Err() != nil {
			break
		}
		m, err := sub.reader.FetchMessage(sub.stop)
		if err != nil {
			<-sub.slots
			if sub.stop.Err() != nil || errors.Is(err, io.EOF) {
				break
			}
			wait = min(max(2*wait, 100*time.Millisecond), retryWaitMax)
			sub.log.Warn().Err(err).Dur("retry_in", wait).Msg("fetching messages failed; retrying")
			select {
			case <-time.After(wait):
			case <-sub.stop.Done():
			}
			continue
		}
		wait = 0
		if !sub.cp.add(m.Partition, m.Offset) {
			<-sub.slots // fetched again after a rebalance: held or acked here already
			continue
		}
		if sub.origin != "" {
			sub.handlers.Add(1)
			go sub.forwardWhenDue(m)
			continue
		}
		// Hand out in fetch order; only the answer is awaited concurrently.
		msg, cancel := sub.message(m)
		handedOut := false
		select {
		case sub.out <- msg:
			handedOut = true
		case <-sub.stop.Done():
		}
		if !handedOut {
			cancel()
			<-sub.slots // left uncommitted for the group to redeliver
			break
		}
		sub.handlers.Add(1)
		h := heldMessage{m: m, msg: msg, cancel: cancel}
		select {
		case sub.idle <- h:
		default:
			go sub.holder(h)
		}
	}
	sub.shutdown()
}

// message turns m into a Watermill message whose context ends with cancel. The context is not
// a child of msgCtx (hold cancels it when msgCtx ends): registering and removing hundreds of
// thousands of children on one parent costs more than the rest of a hand-out.
func (sub *subscription) message(m kafkago.Message) (*message.Message, context.CancelFunc) {
	msg := fromRecord(m)
	ctx, cancel := context.WithCancel(context.Background())
	msg.SetContext(ctx)
	return msg, cancel
}

// heldMessage is a handed-out message and the record it came from.
type heldMessage struct {
	m      kafkago.Message
	msg    *message.Message
	cancel context.CancelFunc
}

// holder holds h, then whatever run passes it on idle, until shutdown closes idle. Holders
// outlive their messages (at most one per slot): a goroutine per message would pay for its
// start and for growing its stack every time.
func (sub *subscription) holder(h heldMessage) {
	sig := make(chan struct{}, 1)
	sub.signalsMu.Lock()
	sub.signals = append(sub.signals, sig)
	sub.signalsMu.Unlock()
	for ok := true; ok; h, ok = <-sub.idle {
		sub.hold(h.m, h.msg, h.cancel, sig)
	}
}

// signalHolders wakes every holder to look at msgsEnded and gaveUp again.
func (sub *subscription) signalHolders() {
	sub.signalsMu.Lock()
	defer sub.signalsMu.Unlock()
	for _, c := range sub.signals {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// hold waits for the answer to msg, handed out for m, until it is acked: a nack with a delay
// writes m to the retry topic and acks it (where that fails or there is none, m is handed out
// again from memory after the delay); a nack without one hands m out again at once. The slot
// taken for m is held all the while.
func (sub *subscription) hold(m kafkago.Message, msg *message.Message, cancel context.CancelFunc, sig <-chan struct{}) {
	defer sub.handlers.Done()
	defer func() { <-sub.slots }()
	for {
		var delay time.Duration
		switch sub.await(msg, cancel, sig) {
		case acked:
			sub.cp.ack(m.Partition, m.Offset)
			return
		case nacked:
			delay = sub.nackDelay(msg)
			if delay > 0 && sub.retryTopic != "" {
				if sub.toRetryTopic(m, msg.UUID, delay) {
					sub.cp.ack(m.Partition, m.Offset)
					return
				}
			}
		case abandoned:
			sub.log.Warn().Str("message_uuid", msg.UUID).Int("partition", m.Partition).Int64("offset", m.Offset).
				Msg("handler did not answer before close timed out; the offset stays uncommitted and the group will redeliver it")
			return
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-sub.stop.Done():
				t.Stop()
				return // not handed out again: left uncommitted for the group to redeliver
			}
		}
		msg, cancel = sub.message(m)
		select {
		case sub.out <- msg:
		case <-sub.stop.Done():
			cancel()
			return
		}
	}
}

// answer is how a handed-out message ended.
type answer int

const (
	acked answer = iota
	nacked
	abandoned
)

// await waits for msg's answer, cancelling its context as soon as msgCtx ends (Subscribe's
// ctx ended, or shutdown stopped draining) and in any case before it returns. sig is the
// holder's signal channel (see signalHolders).
func (sub *subscription) await(msg *message.Message, cancel context.CancelFunc, sig <-chan struct{}) answer {
	defer cancel()
	for cancelled := false; ; {
		if !cancelled && sub.msgsEnded.Load() {
			cancel()
			cancelled = true
		}
		if sub.gaveUp.Load() {
			return abandoned
		}
		select {
		case <-msg.Acked():
			return acked
		case <-msg.Nacked():
			return nacked
		case <-sig:
		}
	}
}

// nackDelay reads the redelivery delay a handler asked for, at nack time.
func (sub *subscription) nackDelay(msg *message.Message) time.Duration {
	v := msg.Metadata.Get(messages.MetaNackDelay)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		sub.log.Warn().Str("message_uuid", msg.UUID).Str("nack_delay", v).
			Msg("metadata nack delay is not a Go duration; redelivering at once")
		return 0
	}
	return d
}

// commitLoop commits the moved commit points every CommitInterval until stopCommits.
func (sub *subscription) commitLoop() {
	defer close(sub.commitsDone)
	t := time.NewTicker(sub.s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sub.commit(sub.commitCtx)
		case <-sub.commitCtx.Done():
			return
		}
	}
}

// commit sends every moved commit point to the group coordinator. A failed commit is retried
// at the next one; until then the group would redeliver acked messages, never skip any.
func (sub *subscription) commit(parent context.Context) {
	points := sub.cp.due()
	if len(points) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(parent, commitTimeout)
	defer cancel()
	msgs := make([]kafkago.Message, 0, len(points))
	for partition, next := range points {
		// kafka-go commits a message's offset plus one: the next offset to read.
		msgs = append(msgs, kafkago.Message{Topic: sub.topic, Partition: partition, Offset: next - 1})
	}
	if err := sub.reader.CommitMessages(ctx, msgs...); err != nil {
		if parent.Err() == nil {
			sub.log.Warn().Err(err).Int("partitions", len(points)).Msg("committing offsets failed; retrying at the next commit")
		}
		return
	}
	sub.cp.committed(points)
}

// shutdown runs after fetching stopped: it lets held messages finish within the configured
// bounds, commits what is acked, leaves the group and closes the channel.
func (sub *subscription) shutdown() {
	cfg := sub.s.cfg
	if sub.s.closing.Err() != nil && cfg.DrainTimeout > 0 {
		waitFor(&sub.handlers, cfg.DrainTimeout)
	}
	sub.cancelMsgs()
	if !waitFor(&sub.handlers, cfg.CloseTimeout) {
		sub.gaveUp.Store(true)
		sub.signalHolders()
		sub.handlers.Wait()
	}
	close(sub.idle) // run sends no more: idle holders end
	sub.stopCommits()
	<-sub.commitsDone
	sub.commit(context.Background())
	if err := sub.reader.Close(); err != nil {
		sub.log.Warn().Err(err).Msg("closing the reader failed; the group will notice the member gone after the session timeout")
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
