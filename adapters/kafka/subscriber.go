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
	"github.com/segmentio/kafka-go/sasl"

	"github.com/infleet/infleet/adapters/internal/delivery"
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
	// TLS is the client TLS configuration (NewTLSConfig); nil: plaintext.
	TLS *tls.Config
	// SASL authenticates each connection (NewSASLMechanism); nil: no authentication.
	SASL sasl.Mechanism
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
// (kafka-go ConsumerGroup, with a Reader per assigned partition in each generation) per
// Subscribe call. Acks are committed only within the generation that fetched their message
// (or the next one where it keeps the partition): a member that lost a partition never
// commits it. Each subscription hands out up to MaxInFlight
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
	// rt carries writer's and every admin client's requests; dialer connects the group
	// members and partition readers. Both nil without TLS and SASL (kafka-go's defaults).
	rt     kafkago.RoundTripper
	dialer *kafkago.Dialer

	subs *delivery.Group
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
	rt := newTransport(cfg.TLS, cfg.SASL)
	return &Subscriber{
		cfg: cfg, log: cfg.Logger, writer: newRecordWriter(cfg.Brokers, rt, cfg.Logger), rt: rt,
		dialer: newDialer(cfg.TLS, cfg.SASL), subs: delivery.NewGroup(),
	}, nil
}

// SubscribeInitialize creates topic when CreateMissingTopics is set; otherwise it does
// nothing. A new group reads from the oldest offset, so nothing published before its first
// Subscribe is missed. It is idempotent.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.subs.Closed() {
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
	if err := s.cluster().EnsureTopics(ctx, s.cfg.TopicPartitions, 1, topic); err != nil {
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
	if !s.subs.Join() {
		return nil, ErrSubscriberClosed
	}
	if topic == "" {
		s.subs.Leave()
		return nil, errors.New("kafka subscribe: topic is empty (name the topic to read)")
	}
	if err := s.ensureTopic(ctx, topic); err != nil {
		s.subs.Leave()
		return nil, err
	}
	retryTopic := ""
	if !s.cfg.MemoryRetries && !strings.HasSuffix(topic, s.cfg.RetrySuffix) {
		retryTopic = topic + s.cfg.RetrySuffix
		if err := s.retryTopicReady(ctx, retryTopic); err != nil {
			s.log.Warn().Err(err).Str("topic", topic).Str("group", s.cfg.Group).Str("retry_topic", retryTopic).
				Msg("no retry topic: nacked messages wait in memory and hold their partition's commit point (run infleet init)")
			retryTopic = ""
		}
	}
	sub := s.start(ctx, topic, s.cfg.Group, s.cfg.MaxInFlight, retryTopic, "")
	if retryTopic != "" && s.subs.Join() {
		s.start(ctx, retryTopic, s.cfg.Group+s.cfg.RetrySuffix, s.cfg.RetryInFlight, "", topic)
	}
	return sub.engine.Messages(), nil
}

// start runs one group member on topic handing out up to inFlight messages, with retryTopic
// for its delayed nacks, or, for a retry topic, forwarding its records to origin. The caller
// has joined s.subs for it.
func (s *Subscriber) start(ctx context.Context, topic, group string, inFlight int, retryTopic, origin string) *subscription {
	log := s.log.With().Str("topic", topic).Str("group", group).Logger()
	sub := &subscription{
		s:          s,
		topic:      topic,
		group:      group,
		log:        log,
		inFlight:   inFlight,
		cp:         newCheckpoints(),
		retryTopic: retryTopic,
		origin:     origin,
		lastGen:    -1,
		consumed:   make(chan struct{}),
	}
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                group,
		Brokers:           s.cfg.Brokers,
		Dialer:            s.dialer,
		Topics:            []string{topic},
		HeartbeatInterval: s.cfg.HeartbeatInterval,
		SessionTimeout:    s.cfg.SessionTimeout,
		RebalanceTimeout:  s.cfg.RebalanceTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafkago.FirstOffset,
		Timeout:           commitTimeout,
		ErrorLogger:       errorLogger(log),
	})
	if err != nil {
		// The configuration was validated: only a kafka-go change would bring this here.
		panic(fmt.Sprintf("kafka subscriber: consumer group config: %v", err))
	}
	sub.cg = cg
	sub.engine = s.subs.Start(ctx, delivery.Config{
		MaxInFlight:  inFlight,
		DrainTimeout: s.cfg.DrainTimeout,
		CloseTimeout: s.cfg.CloseTimeout,
		Finish:       sub.finish,
		Logger:       log,
	}, nil)
	go sub.consume()
	if origin != "" {
		go sub.forwardDue()
	}
	return sub
}

// Close stops every subscription: no more messages are fetched; handed-out messages get
// DrainTimeout to finish, then their contexts are cancelled and handlers get CloseTimeout to
// answer; the acked commit points are committed and the group is left. Messages not answered
// are not committed, so the group delivers them again. Close returns when every
// subscription's channel is closed; it is idempotent, and Subscribe fails after it.
func (s *Subscriber) Close() error {
	s.subs.Close()
	err := s.writer.Close()
	closeTransport(s.rt)
	if err != nil {
		return fmt.Errorf("close kafka subscriber: %w", err)
	}
	return nil
}

// subscription is one Subscribe call: a member of the consumer group whose generations each
// run a fetch loop per assigned partition and a commit loop, offering each record to the
// delivery engine, which holds the messages and stops the subscription.
//
// Acks count only in the generation that fetched their message, or in the next one when it
// keeps the partition with this member (no other member can have owned it in between):
// when a generation ends, the checkpoint windows of the partitions that moved elsewhere are
// dropped, so late acks of their messages are ignored and the new owner, reading from the
// group's committed offset, delivers them again. Commits go through the generation
// (kafka-go's Generation.CommitOffsets), which the coordinator refuses once the group has
// moved on to another generation.
type subscription struct {
	s        *Subscriber
	topic    string
	group    string
	log      zerolog.Logger
	inFlight int
	cp       *checkpoints
	engine   *delivery.Engine

	// retryTopic is where messages nacked with a delay go; empty: they wait in memory.
	retryTopic string
	// origin is set on a retry topic's subscription: records are not handed to a router but
	// written back to their origin topic (this one, unless a header names another) once due.
	origin string

	cg       *kafkago.ConsumerGroup
	consumed chan struct{} // closed when consume returns, after cg.Close

	// genMu guards gen (the generation under way, nil between generations), lastGen and
	// lastMember (the generation last joined).
	genMu      sync.Mutex
	gen        *kafkago.Generation
	lastGen    int32
	lastMember string
	// commitMu serialises commits, so that an older commit point never lands after a newer.
	commitMu sync.Mutex
}

// consume takes each generation the group hands this member until the group is closed.
func (sub *subscription) consume() {
	defer close(sub.consumed)
	for {
		gen, err := sub.cg.Next(context.Background())
		if errors.Is(err, kafkago.ErrGroupClosed) {
			return
		}
		if err != nil {
			// kafka-go backs off before trying again.
			sub.log.Warn().Err(err).Msg("joining the consumer group failed; retrying")
			continue
		}
		sub.begin(gen)
	}
}

// begin starts generation gen: it keeps the checkpoint windows of the partitions gen
// assigns to this member when gen directly follows the last one (the partition never had
// another owner in between), drops all others, and starts a fetch loop per partition and a
// commit loop.
func (sub *subscription) begin(gen *kafkago.Generation) {
	assigned := gen.Assignments[sub.topic]
	sub.genMu.Lock()
	var keep map[int]bool
	if gen.ID == sub.lastGen+1 && gen.MemberID == sub.lastMember {
		keep = make(map[int]bool, len(assigned))
		for _, a := range assigned {
			keep[a.ID] = true
		}
	}
	sub.cp.keep(keep)
	sub.gen, sub.lastGen, sub.lastMember = gen, gen.ID, gen.MemberID
	sub.genMu.Unlock()
	parts := make([]int, 0, len(assigned))
	for _, a := range assigned {
		parts = append(parts, a.ID)
		gen.Start(func(ctx context.Context) { sub.fetch(ctx, a) })
	}
	gen.Start(func(ctx context.Context) { sub.commitLoop(ctx, gen) })
	sub.log.Debug().Int32("generation", gen.ID).Ints("partitions", parts).Msg("generation started")
}

// fetch offers the messages of partition a to the engine, in order, from the assignment's
// offset or, when this member kept the partition's window from the generation before, from
// after its highest fetched offset, until the generation (ctx) ends or the subscription
// stops. A message not handed out by then is taken back from the window, for the group to
// deliver again. It returns only when the generation ends: a function started by
// Generation.Start that returns ends it.
func (sub *subscription) fetch(ctx context.Context, a kafkago.PartitionAssignment) {
	defer func() { <-ctx.Done() }()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unhook := context.AfterFunc(sub.engine.Stopping(), cancel)
	defer unhook()

	from := a.Offset
	if next, ok := sub.cp.resume(a.ID); ok {
		from = next
	}
	reader := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:        sub.s.cfg.Brokers,
		Dialer:         sub.s.dialer,
		Topic:          sub.topic,
		Partition:      a.ID,
		MinBytes:       1,
		MaxBytes:       10 << 20,
		MaxWait:        sub.s.cfg.MaxWait,
		QueueCapacity:  min(sub.inFlight, 100),
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
		ErrorLogger:    errorLogger(sub.log),
	})
	defer func() {
		if err := reader.Close(); err != nil {
			sub.log.Debug().Err(err).Int("partition", a.ID).Msg("closing a partition reader failed")
		}
	}()
	if err := reader.SetOffset(from); err != nil {
		sub.log.Warn().Err(err).Int("partition", a.ID).Int64("offset", from).Msg("cannot read the partition; it waits for the next generation")
		return
	}
	wait := time.Duration(0)
	for fctx.Err() == nil {
		m, err := reader.FetchMessage(fctx)
		if err != nil {
			if fctx.Err() != nil {
				return
			}
			wait = min(max(2*wait, 100*time.Millisecond), retryWaitMax)
			sub.log.Warn().Err(err).Int("partition", a.ID).Dur("retry_in", wait).Msg("fetching messages failed; retrying")
			select {
			case <-time.After(wait):
			case <-fctx.Done():
			}
			continue
		}
		wait = 0
		epoch, ok := sub.cp.add(m.Partition, m.Offset)
		if !ok {
			continue // fetched again: held or acked here already
		}
		if r := newRecord(sub, &m, epoch); !sub.engine.Offer(fctx, r) {
			sub.cp.unfetch(m.Partition, m.Offset, epoch)
			r.free()
		}
	}
}

// commitLoop commits gen's moved commit points every CommitInterval, and once more when gen
// ends: the coordinator still takes commits of a generation whose rebalance is under way,
// and refuses them once the next generation has formed.
func (sub *subscription) commitLoop(ctx context.Context, gen *kafkago.Generation) {
	t := time.NewTicker(sub.s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sub.commit(gen, false)
		case <-ctx.Done():
			sub.commit(gen, true)
			sub.genMu.Lock()
			if sub.gen == gen {
				sub.gen = nil
			}
			sub.genMu.Unlock()
			return
		}
	}
}

// commit sends every moved commit point to the group coordinator as generation gen's. A
// failed commit is retried at the next one, if gen lasts; until then the group would
// redeliver acked messages, never skip any. ending says gen is over, where a refusal is
// expected.
func (sub *subscription) commit(gen *kafkago.Generation, ending bool) {
	sub.commitMu.Lock()
	defer sub.commitMu.Unlock()
	points := sub.cp.due()
	if len(points) == 0 {
		return
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{sub.topic: points}); err != nil {
		ev := sub.log.Warn()
		if ending {
			ev = sub.log.Debug()
		}
		ev.Err(err).Int32("generation", gen.ID).Int("partitions", len(points)).
			Msg("committing offsets failed; retrying at the next commit while this generation lasts, else the group delivers them again")
		return
	}
	sub.cp.committed(points)
}

// finish runs when the engine has stopped and every message was answered or given up on:
// it commits what is acked and leaves the group.
func (sub *subscription) finish() {
	sub.genMu.Lock()
	gen := sub.gen
	sub.genMu.Unlock()
	if gen != nil {
		sub.commit(gen, false)
	}
	if err := sub.cg.Close(); err != nil {
		sub.log.Warn().Err(err).Msg("leaving the group failed; the group will notice the member gone after the session timeout")
	}
	<-sub.consumed
}

// client returns an admin client of the subscriber's brokers, with its TLS and SASL.
func (s *Subscriber) client() *kafkago.Client {
	return &kafkago.Client{Addr: kafkago.TCP(s.cfg.Brokers...), Timeout: commitTimeout, Transport: s.rt}
}

// cluster returns the subscriber's brokers, with its TLS and SASL, for administration.
func (s *Subscriber) cluster() Cluster {
	return Cluster{Brokers: s.cfg.Brokers, TLS: s.cfg.TLS, SASL: s.cfg.SASL}
}
