package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// SchedulerTopic is the one topic a Scheduler serves: the merged stream of every priority.
const SchedulerTopic = "infleet.jobs"

// Scheduler defaults.
const (
	DefaultConcurrency = 64
	DefaultWeightHigh  = 6
	DefaultWeightNorm  = 3
	DefaultWeightLow   = 1
)

// SchedulerConfig wires a Scheduler. Subscriber and Topics are required.
type SchedulerConfig struct {
	// Subscriber is the transport's subscriber; the Scheduler subscribes to each priority topic.
	Subscriber message.Subscriber
	Topics     pipeline.Topics
	// Concurrency caps messages handed out whose handlers have not returned (default 64).
	Concurrency int
	// HeldAcks is how many more messages may wait, their handlers returned, for the archive
	// write their acknowledgement needs (archive.write: before_ack): at most Concurrency +
	// HeldAcks messages are handed out and not yet acked or nacked, and the transport must
	// hold that many. 0 (the default) holds none: a handler returns only once its message
	// may be acknowledged, and Concurrency caps the messages not yet acked or nacked.
	HeldAcks int
	// Weights share the hand-outs among priorities that have work waiting (default 6/3/1).
	// With Strict, a lower priority gets a message only when every higher one has none ready.
	WeightHigh, WeightNormal, WeightLow int
	Strict                              bool
}

// Scheduler merges the per-priority subscriptions of a transport into one stream of messages
// for a Watermill router, choosing among priorities by weight (smooth weighted round-robin over
// the priorities that have a message ready) or strictly, and holding at most Concurrency
// messages in flight. It is a message.Subscriber serving SchedulerTopic. A flood of low
// messages never starves high ones; under weights, low ones still progress.
//
// With HeldAcks it is also the ack-holder of the messages it hands out: the router gets a
// stand-in of each, and a job handler (Worker.Process) may leave the wait for its job's
// archive write with the Scheduler and return; the stand-in's ack then frees the handler's
// place at once, and the transport's message is acked only once that wait returned (nacked,
// for redelivery, when the write failed).
type Scheduler struct {
	cfg     SchedulerConfig
	weights [3]int
	// unanswered counts the messages handed out and not yet acked or nacked.
	unanswered ackHolder

	mu       sync.Mutex
	draining chan struct{}
	closing  chan struct{}
	closed   bool
	wg       sync.WaitGroup
}

// NewScheduler checks cfg and returns a Scheduler.
func NewScheduler(cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Subscriber == nil {
		return nil, errors.New("scheduler: no subscriber (set transport.kind)")
	}
	if err := cfg.Topics.Validate(); err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.HeldAcks < 0 {
		return nil, fmt.Errorf("scheduler: HeldAcks is %d (use 0 or more)", cfg.HeldAcks)
	}
	w := [3]int{cfg.WeightHigh, cfg.WeightNormal, cfg.WeightLow}
	if w == [3]int{} {
		w = [3]int{DefaultWeightHigh, DefaultWeightNorm, DefaultWeightLow}
	}
	for i, v := range w {
		if v < 0 {
			return nil, fmt.Errorf("scheduler: weight of %s is %d (weights must be 0 or more)", messages.Priorities[i], v)
		}
	}
	return &Scheduler{cfg: cfg, weights: w, draining: make(chan struct{}), closing: make(chan struct{})}, nil
}

// Subscribe starts the merged stream. It may be called once, with SchedulerTopic.
func (s *Scheduler) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic != SchedulerTopic {
		return nil, fmt.Errorf("scheduler serves topic %q only, not %q", SchedulerTopic, topic)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("scheduler is closed")
	}
	var ins [3]<-chan *message.Message
	for i, p := range messages.Priorities {
		ch, err := s.cfg.Subscriber.Subscribe(ctx, s.cfg.Topics.For(p))
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", s.cfg.Topics.For(p), err)
		}
		ins[i] = ch
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		s.loop(ctx, ins, out)
		// A drained scheduler keeps its stream open until Close: a router whose stream ends
		// closes itself, and with it the transport, under jobs still running.
		select {
		case <-s.closing:
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// loop hands messages from ins to out by priority until ctx ends or the scheduler drains.
func (s *Scheduler) loop(ctx context.Context, ins [3]<-chan *message.Message, out chan<- *message.Message) {
	// handling: one token per message whose handler has not returned; unacked: one per
	// message not yet acked or nacked, held acks included.
	handling := make(chan struct{}, s.cfg.Concurrency)
	unacked := handling
	if s.cfg.HeldAcks > 0 {
		unacked = make(chan struct{}, s.cfg.Concurrency+s.cfg.HeldAcks)
	}
	m := merger{s: s, ins: ins}
	defer m.giveBack()
	for {
		if !s.take(ctx, unacked) {
			return
		}
		if s.cfg.HeldAcks > 0 && !s.take(ctx, handling) {
			<-unacked
			return
		}
		msg, ok := m.next(ctx)
		if !ok {
			<-unacked
			if s.cfg.HeldAcks > 0 {
				<-handling
			}
			return
		}
		s.unanswered.add()
		handOut := msg
		if s.cfg.HeldAcks > 0 {
			var hold *ackHold
			handOut, hold = standIn(msg)
			go func() {
				defer func() { <-unacked; s.unanswered.done() }()
				forward(ctx, msg, handOut, hold, func() { <-handling })
			}()
		} else {
			go func() {
				select {
				case <-msg.Acked():
				case <-msg.Nacked():
				case <-ctx.Done():
				}
				<-unacked
				s.unanswered.done()
			}()
		}
		select {
		case out <- handOut:
		case <-ctx.Done():
			handOut.Nack()
			msg.Nack()
			return
		case <-s.draining:
			// Never handed out: give it back to the transport for redelivery.
			handOut.Nack()
			msg.Nack()
			return
		}
	}
}

// take puts a token in slots, waiting for room, and reports false when ctx ends or the
// scheduler drains first.
func (s *Scheduler) take(ctx context.Context, slots chan<- struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	case <-s.draining:
		return false
	}
}

// merger holds at most one received, not yet handed out message per priority, so that the
// choice among priorities sees every one that has work ready.
type merger struct {
	s       *Scheduler
	ins     [3]<-chan *message.Message
	pending [3]*message.Message
	credit  [3]int
}

// fill takes a message from each priority that has none pending, without waiting.
func (m *merger) fill() {
	for i, in := range m.ins {
		if m.pending[i] != nil || in == nil {
			continue
		}
		select {
		case msg, open := <-in:
			if !open {
				m.ins[i] = nil
				continue
			}
			m.pending[i] = msg
		default:
		}
	}
}

func (m *merger) empty() bool {
	return m.pending[0] == nil && m.pending[1] == nil && m.pending[2] == nil
}

// wait blocks until some priority has a message; false when the inputs end or the scheduler
// stops.
func (m *merger) wait(ctx context.Context) bool {
	for m.empty() {
		if m.ins[0] == nil && m.ins[1] == nil && m.ins[2] == nil {
			return false
		}
		var msg *message.Message
		var open bool
		var i int
		select {
		case msg, open = <-m.ins[0]:
			i = 0
		case msg, open = <-m.ins[1]:
			i = 1
		case msg, open = <-m.ins[2]:
			i = 2
		case <-ctx.Done():
			return false
		case <-m.s.draining:
			return false
		}
		if !open {
			m.ins[i] = nil
			continue
		}
		m.pending[i] = msg
	}
	return true
}

// next returns the message of the priority the policy prefers among those with one pending.
func (m *merger) next(ctx context.Context) (*message.Message, bool) {
	m.fill()
	if !m.wait(ctx) {
		return nil, false
	}
	m.fill()
	for _, i := range m.s.preference(&m.credit) {
		if msg := m.pending[i]; msg != nil {
			m.pending[i] = nil
			m.s.charge(&m.credit, i)
			return msg, true
		}
	}
	return nil, false
}

// giveBack nacks the pending messages so the transport delivers them again.
func (m *merger) giveBack() {
	for i, msg := range m.pending {
		if msg != nil {
			msg.Nack()
			m.pending[i] = nil
		}
	}
}

// preference orders the priorities to try: strictly highest first, or by weighted credit.
func (s *Scheduler) preference(credit *[3]int) [3]int {
	if s.cfg.Strict {
		return [3]int{0, 1, 2}
	}
	order := [3]int{0, 1, 2}
	score := func(i int) int { return credit[i] + s.weights[i] }
	// Three elements: a fixed insertion sort, descending by score, ties to the higher priority.
	for a := 1; a < 3; a++ {
		for b := a; b > 0 && score(order[b]) > score(order[b-1]); b-- {
			order[b], order[b-1] = order[b-1], order[b]
		}
	}
	return order
}

// charge updates the smooth weighted round-robin credits after priority i was served. Credits
// are clamped so that a priority idle for long cannot bank an unbounded burst.
func (s *Scheduler) charge(credit *[3]int, i int) {
	total := s.weights[0] + s.weights[1] + s.weights[2]
	if s.cfg.Strict || total == 0 {
		return
	}
	for j := range credit {
		credit[j] = min(credit[j]+s.weights[j], total)
	}
	credit[i] -= total
	credit[i] = max(credit[i], -total)
}

// Drain stops handing out messages; those already handed out run on. It is the first stage of
// shutdown; the messages left on the transport are delivered again later.
func (s *Scheduler) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}

// WaitAnswered blocks until every message handed out is acked or nacked, held acks included,
// or ctx ends, and reports whether every one is. Called after Drain, it is the wait of a
// graceful shutdown for the acks that wait on archive writes.
func (s *Scheduler) WaitAnswered(ctx context.Context) bool { return s.unanswered.wait(ctx) }

// Close drains, waits for the merge loop to stop and closes the transport subscriber.
func (s *Scheduler) Close() error {
	s.Drain()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	err := s.cfg.Subscriber.Close()
	s.wg.Wait()
	return err
}
