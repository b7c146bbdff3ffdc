package sqs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
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

// gatherWindow is how long a poller waits for more free slots before a small receive.
const gatherWindow = 2 * time.Millisecond

// retryWaitMax caps the wait between attempts after a failed receive.
const retryWaitMax = 5 * time.Second

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

	mu      sync.Mutex
	closed  bool
	closing context.Context // cancelled when Close begins
	close   context.CancelFunc
	running sync.WaitGroup // one per subscription still running

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
	s := &Subscriber{cfg: cfg, client: cfg.Client, urls: newURLs(cfg.Client), log: cfg.Logger}
	s.closing, s.close = context.WithCancel(context.Background())
	return s, nil
}

// SubscribeInitialize creates queue topic, with SQS's default attributes, if it does not
// exist. infleet itself never calls it: its queues come from EnsureQueues with their redrive
// policy, and start-up checks them with CheckQueues. It is idempotent.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.isClosed() {
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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	s.running.Add(1)
	s.mu.Unlock()

	url, err := s.urls.get(ctx, topic)
	if err != nil {
		s.running.Done()
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	log := s.log.With().Str("topic", topic).Logger()
	sub := &subscription{
		s:       s,
		topic:   topic,
		url:     url,
		log:     log,
		out:     make(chan *message.Message),
		slots:   make(chan struct{}, s.cfg.MaxInFlight),
		abandon: make(chan struct{}),
		held:    map[*heldMessage]struct{}{},
	}
	sub.deleter = newBatcher(log, "delete", func(ctx context.Context, b []batchEntry) ([]types.BatchResultErrorEntry, error) {
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
	sub.changer = newBatcher(log, "change visibility", func(ctx context.Context, b []batchEntry) ([]types.BatchResultErrorEntry, error) {
		return s.changeVisibility(ctx, url, b)
	})
	// stop ends receiving: Subscribe's ctx ended or Close began.
	sub.stop, sub.cancelStop = context.WithCancel(ctx)
	sub.unhookStop = context.AfterFunc(s.closing, sub.cancelStop)
	// Messages' contexts end with Subscribe's ctx, or when shutdown cancels them.
	sub.msgCtx, sub.cancelMsgs = context.WithCancel(ctx)
	sub.heartbeatStop = make(chan struct{})
	sub.heartbeatDone = make(chan struct{})
	go sub.heartbeat()
	for range s.cfg.Pollers {
		sub.pollers.Add(1)
		go sub.poll()
	}
	go sub.run()
	return sub.out, nil
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

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops every subscription: no more messages are received (a long poll under way is
// interrupted); handed-out messages get DrainTimeout to finish, then their contexts are
// cancelled and handlers get CloseTimeout to answer. Messages never handed out are made
// visible again at once; pending acks and nacks are sent; messages not answered in time stop
// being extended and come back when their visibility timeout runs out. Nothing is lost. Close
// returns when every subscription's channel is closed; it is idempotent, and Subscribe fails
// after it. It does not close the client.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.close()
	s.running.Wait()
	return nil
}

// subscription is one Subscribe call: pollers, a heartbeat, two batchers and one goroutine
// per message held.
type subscription struct {
	s     *Subscriber
	topic string
	url   string
	log   zerolog.Logger
	out   chan *message.Message

	slots chan struct{} // one token per message held; capacity MaxInFlight

	stop       context.Context
	cancelStop context.CancelFunc
	unhookStop func() bool

	msgCtx     context.Context
	cancelMsgs context.CancelFunc

	deleter *batcher
	changer *batcher

	hmu           sync.Mutex
	held          map[*heldMessage]struct{}
	heartbeatStop chan struct{}
	heartbeatDone chan struct{}

	pollers  sync.WaitGroup
	abandon  chan struct{} // closed when shutdown stops waiting for handlers
	handlers sync.WaitGroup
}

// run waits for the pollers to stop, then shuts the subscription down.
func (sub *subscription) run() {
	defer sub.s.running.Done()
	defer sub.unhookStop()
	defer sub.cancelStop()
	<-sub.stop.Done()
	sub.pollers.Wait()
	sub.shutdown()
}

// poll receives messages while there is room for them, until the subscription stops.
func (sub *subscription) poll() {
	defer sub.pollers.Done()
	wait := time.Duration(0)
	for {
		n := sub.acquire()
		if n == 0 {
			return
		}
		err := sub.receive(n)
		if err == nil {
			wait = 0
			continue
		}
		if sub.stop.Err() != nil {
			return
		}
		wait = min(max(2*wait, 100*time.Millisecond), retryWaitMax)
		if isMissingQueue(err) {
			sub.log.Error().Err(err).Dur("retry_in", wait).Msg("SQS queue does not exist; run \"infleet init\" or create it")
		} else {
			sub.log.Warn().Err(err).Dur("retry_in", wait).Msg("receiving messages failed; retrying")
		}
		select {
		case <-time.After(wait):
		case <-sub.stop.Done():
			return
		}
	}
}

// acquire waits for at least one free slot and takes up to ten; it returns how many it took,
// 0 when the subscription stops. When few slots are free it gathers more for up to
// gatherWindow, so a busy subscription does not receive one message per call.
func (sub *subscription) acquire() int {
	if sub.stop.Err() != nil {
		return 0
	}
	select {
	case sub.slots <- struct{}{}:
	case <-sub.stop.Done():
		return 0
	}
	limit := min(maxBatchEntries, cap(sub.slots))
	n := 1 + sub.grab(limit-1)
	if want := min(limit, cap(sub.slots)/4); n < want {
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
		n += sub.grab(limit - n)
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

// receive long-polls for up to n messages, for which slots are taken, and starts a goroutine
// for each that arrives.
func (sub *subscription) receive(n int) error {
	cfg := sub.s.cfg
	out, err := sub.s.client.ReceiveMessage(sub.stop, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(sub.url),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(cfg.WaitTime / time.Second),
		VisibilityTimeout:           int32(cfg.VisibilityTimeout / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		sub.release(n)
		return err
	}
	received := time.Now()
	for _, m := range out.Messages {
		sub.handlers.Add(1)
		go sub.hold(m, received)
	}
	sub.release(n - len(out.Messages))
	return nil
}

// heldMessage is a received message the subscription keeps invisible until it is answered.
type heldMessage struct {
	receipt string

	mu        sync.Mutex // held by the heartbeat while it extends the message
	done      bool       // answered or given up: no more extensions
	visibleAt time.Time  // when SQS makes the message visible again, as last extended
}

// hold hands m to the channel and waits for its answer, while the heartbeat keeps it
// invisible.
func (sub *subscription) hold(m types.Message, received time.Time) {
	defer sub.handlers.Done()
	defer sub.release(1)

	msg, err := decode(m)
	if err != nil {
		// The message can never be read: it comes back after its visibility timeout, not at
		// once, until the queue's redrive policy moves it to the dead-letter queue.
		sub.log.Error().Err(err).Str("sqs_message_id", aws.ToString(m.MessageId)).Int("receive_count", receiveCount(m)).
			Msg("cannot decode SQS message; leaving it for the queue's redrive policy to dead-letter")
		return
	}
	receipt := aws.ToString(m.ReceiptHandle)
	h := &heldMessage{receipt: receipt, visibleAt: received.Add(sub.s.cfg.VisibilityTimeout)}
	sub.hmu.Lock()
	sub.held[h] = struct{}{}
	sub.hmu.Unlock()
	defer sub.forget(h)

	ctx, cancel := context.WithCancel(sub.msgCtx)
	defer cancel()
	msg.SetContext(ctx)

	if sub.stop.Err() != nil {
		sub.forget(h)
		sub.changer.add(receipt, 0) // arrived while stopping: give it back at once
		return
	}
	select {
	case sub.out <- msg:
	case <-sub.stop.Done():
		sub.forget(h)
		sub.changer.add(receipt, 0)
		return
	}
	select {
	case <-msg.Acked():
		sub.forget(h)
		sub.deleter.add(receipt, 0)
	case <-msg.Nacked():
		sub.forget(h)
		sub.changer.add(receipt, sub.nackDelay(msg))
	case <-sub.abandon:
		h.mu.Lock()
		visibleAt := h.visibleAt
		h.mu.Unlock()
		sub.log.Warn().Str("message_uuid", msg.UUID).Dur("redelivery_in", time.Until(visibleAt)).
			Msg("handler did not answer before close timed out; SQS will deliver the message again")
	}
}

// forget ends the heartbeat of h, waiting for an extension under way, so that an extension
// never lands after the visibility change of a nack. It is idempotent.
func (sub *subscription) forget(h *heldMessage) {
	h.mu.Lock()
	h.done = true
	h.mu.Unlock()
	sub.hmu.Lock()
	delete(sub.held, h)
	sub.hmu.Unlock()
}

// nackDelay reads the redelivery delay a handler asked for, at nack time, in whole seconds
// rounded up and capped at MaxNackDelay.
func (sub *subscription) nackDelay(msg *message.Message) int32 {
	d, ok := messages.NackDelay(msg.Metadata)
	if !ok {
		sub.log.Warn().Str("message_uuid", msg.UUID).Str("nack_delay", msg.Metadata.Get(messages.MetaNackDelay)).
			Msg("metadata nack delay is not a Go duration; redelivering at once")
	}
	return int32(math.Ceil(min(d, MaxNackDelay).Seconds()))
}

// heartbeat extends, every quarter of the visibility timeout, the held messages that have
// less than half of it left, ten per call, until shutdown stops it.
func (sub *subscription) heartbeat() {
	defer close(sub.heartbeatDone)
	vt := sub.s.cfg.VisibilityTimeout
	t := time.NewTicker(vt / 4)
	defer t.Stop()
	for {
		select {
		case <-sub.heartbeatStop:
			return
		case <-t.C:
		}
		now := time.Now()
		var due []*heldMessage
		sub.hmu.Lock()
		for h := range sub.held {
			if h.visibleAt.Sub(now) <= vt/2 {
				due = append(due, h)
			}
		}
		sub.hmu.Unlock()
		for len(due) > 0 {
			n := min(len(due), maxBatchEntries)
			sub.extend(due[:n])
			due = due[n:]
		}
	}
}

// extend sets the visibility timeout of hs (at most ten) to the full timeout again.
func (sub *subscription) extend(hs []*heldMessage) {
	vt := sub.s.cfg.VisibilityTimeout
	var batch []batchEntry
	var locked []*heldMessage
	for i, h := range hs {
		h.mu.Lock()
		if h.done {
			h.mu.Unlock()
			continue
		}
		locked = append(locked, h)
		batch = append(batch, batchEntry{id: fmt.Sprint(i), receipt: h.receipt, visibility: int32(vt / time.Second)})
	}
	defer func() {
		for _, h := range locked {
			h.mu.Unlock()
		}
	}()
	if len(batch) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), vt/2)
	defer cancel()
	failed, err := sub.s.changeVisibility(ctx, sub.url, batch)
	if err != nil {
		sub.log.Warn().Err(err).Int("messages", len(batch)).Msg("extending the visibility of held messages failed; they may be delivered again while they run")
		return
	}
	bad := map[string]bool{}
	for _, f := range failed {
		bad[aws.ToString(f.Id)] = true
		sub.log.Warn().Str("code", aws.ToString(f.Code)).Str("reason", aws.ToString(f.Message)).
			Msg("extending the visibility of a held message failed; it may be delivered again while it runs")
	}
	for i, h := range locked {
		if !bad[batch[i].id] {
			h.visibleAt = start.Add(vt)
		}
	}
}

// shutdown runs after receiving stopped: it lets held messages finish within the configured
// bounds, sends the pending acks and nacks, then closes the channel.
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
	close(sub.heartbeatStop)
	<-sub.heartbeatDone
	sub.deleter.close()
	sub.changer.close()
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
