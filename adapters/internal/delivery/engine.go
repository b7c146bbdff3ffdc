package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
)

// Engine defaults and bounds.
const (
	// DefaultCloseTimeout is how long a stopping engine waits for handlers to answer after
	// cancelling their messages' contexts, when Config.CloseTimeout is 0.
	DefaultCloseTimeout = 10 * time.Second
	// GatherWindow is how long the engine waits for more free slots before a small fetch.
	GatherWindow = 2 * time.Millisecond
	// RetryWaitMax caps the wait between fetches after a failed one.
	RetryWaitMax = 5 * time.Second
)

// Config configures an Engine.
type Config struct {
	// MaxInFlight bounds the messages the engine holds at once: fetched or offered and not yet
	// answered, given back or abandoned (required, positive). It is the width of the worker
	// pool behind a Watermill router, which runs each message in its own goroutine.
	MaxInFlight int
	// MaxFetch bounds n of one Source.Fetch (default MaxInFlight; SQS takes ten at most).
	MaxFetch int
	// Fetchers is how many Source.Fetch calls run at once (default 1).
	Fetchers int
	// Lease is how long the transport keeps a fetched message from other consumers (default
	// 0: not leased). When it is set and the Source implements Extender, the engine renews
	// every held message's lease that has less than half of it left, checking every quarter
	// Lease, so a long job is not delivered twice.
	Lease time.Duration
	// ExtendBatch bounds the deliveries of one Extender.Extend call (default: all those due).
	ExtendBatch int
	// DrainTimeout is how long Close lets handed-out messages finish, their contexts still
	// live, before it cancels those contexts (default 0: at once). An engine stopped by its
	// context ending does not drain.
	DrainTimeout time.Duration
	// CloseTimeout is how long a stopping engine then waits for handlers to answer (default
	// DefaultCloseTimeout). Messages still held after it are abandoned: not answered, left to
	// the transport to deliver again (when their lease runs out).
	CloseTimeout time.Duration
	// Finish, when set, is called once after fetching stopped and every message was answered,
	// given back or abandoned, and before the messages channel is closed: the transport sends
	// what it batched and lets go of what it holds.
	Finish func()
	// Logger receives the engine's log lines (add the topic to its context); the zero value
	// discards them.
	Logger zerolog.Logger
}

// Validate reports every problem in cfg. Adapters validate their own configs first, so a
// problem here is a programming error.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.MaxInFlight <= 0 {
		errs = append(errs, fmt.Errorf("delivery: MaxInFlight is %d (use a positive number)", cfg.MaxInFlight))
	}
	if cfg.MaxFetch < 0 || cfg.Fetchers < 0 || cfg.ExtendBatch < 0 {
		errs = append(errs, errors.New("delivery: MaxFetch, Fetchers and ExtendBatch cannot be negative (use 0 for the defaults)"))
	}
	if cfg.Lease < 0 || cfg.DrainTimeout < 0 || cfg.CloseTimeout < 0 {
		errs = append(errs, errors.New("delivery: Lease, DrainTimeout and CloseTimeout cannot be negative"))
	}
	return errors.Join(errs...)
}

// Engine runs one subscription: it takes messages from a Source (or from Offer), at most
// MaxInFlight at a time, hands each out on an unbuffered Watermill channel in the order it
// got them, holds it until the handler acks or nacks it (renewing its lease meanwhile),
// answers the transport, and stops in two stages. Its methods are safe for concurrent use.
//
// Every handed-out message carries a context that ends when the message is answered, when
// the engine's context ends, or when a stopping engine stops draining.
type Engine struct {
	cfg Config
	src Source   // nil: messages come only through Offer
	ext Extender // nil: leases are not renewed
	log zerolog.Logger
	out chan *message.Message

	slots chan struct{} // one token per message held; capacity MaxInFlight

	stop       context.Context // ends when fetching stops
	cancelStop context.CancelFunc
	closing    context.Context // ends when Close begins: stopping then drains
	close      context.CancelFunc

	// msgBase carries the values of the engine's context, not its cancellation: message
	// contexts are not children of one shared parent (registering and removing hundreds of
	// thousands of children on one parent costs more than the rest of a hand-out); holders
	// cancel them themselves when msgsEnded is set.
	msgBase    context.Context
	cancelMsgs context.CancelFunc

	queue    chan pending // fetched, waiting for hand-out in fetch order; closed after fetchers
	fetchers sync.WaitGroup

	// admitMu guards stopped and the handlers.Add of each admitted message, so that
	// shutdown's waits on handlers see every message handed out.
	admitMu  sync.Mutex
	stopped  bool
	handlers sync.WaitGroup // one per message held

	idle chan held // holders waiting for a message to hold; closed by shutdown

	// msgsEnded is set when message contexts must end, gaveUp when shutdown stops waiting for
	// handlers; holders learn of either through their own signal channel, so that waiting
	// holders do not all contend on one shared channel.
	msgsEnded, gaveUp atomic.Bool
	signalsMu         sync.Mutex
	signals           []chan struct{} // one per holder, capacity 1

	leases leases

	done chan struct{} // closed after out
}

// pending is a fetched message waiting for hand-out.
type pending struct {
	d     Delivery
	lease *lease
}

// held is a handed-out message and what its holder needs to answer it.
type held struct {
	d      Delivery
	msg    *message.Message
	cancel context.CancelFunc
	lease  *lease
}

// Start runs an engine that fetches from src (nil: messages come only through Offer) until
// ctx ends or Close is called. It panics when cfg is invalid.
func Start(ctx context.Context, cfg Config, src Source) *Engine {
	return start(ctx, context.Background(), cfg, src, nil)
}

// start runs an engine that also begins closing when closing ends; done runs after it
// finished.
func start(ctx, closing context.Context, cfg Config, src Source, done func()) *Engine {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.MaxFetch = min(cmp.Or(cfg.MaxFetch, cfg.MaxInFlight), cfg.MaxInFlight)
	cfg.Fetchers = cmp.Or(cfg.Fetchers, 1)
	cfg.CloseTimeout = cmp.Or(cfg.CloseTimeout, DefaultCloseTimeout)
	e := &Engine{
		cfg:   cfg,
		src:   src,
		log:   cfg.Logger,
		out:   make(chan *message.Message),
		slots: make(chan struct{}, cfg.MaxInFlight),
		idle:  make(chan held),
		done:  make(chan struct{}),
	}
	if ext, ok := src.(Extender); ok && cfg.Lease > 0 {
		e.ext = ext
		e.leases.held = map[*lease]struct{}{}
	}
	e.closing, e.close = context.WithCancel(closing)
	e.stop, e.cancelStop = context.WithCancel(ctx)
	unhook := context.AfterFunc(e.closing, e.cancelStop)
	msgs, cancelMsgs := context.WithCancel(ctx)
	e.msgBase, e.cancelMsgs = context.WithoutCancel(ctx), cancelMsgs
	context.AfterFunc(msgs, func() { e.msgsEnded.Store(true); e.signalHolders() })

	var heartbeat chan struct{}
	if e.ext != nil {
		heartbeat = make(chan struct{})
		go e.heartbeat(heartbeat)
	}
	if src != nil {
		e.queue = make(chan pending, cfg.MaxInFlight)
		go e.handOutFetched()
		for range cfg.Fetchers {
			e.fetchers.Add(1)
			go e.fetch()
		}
	}
	go func() {
		defer unhook()
		e.shutdown(heartbeat)
		if done != nil {
			done()
		}
	}()
	return e
}

// Messages returns the unbuffered channel of handed-out messages. Every message must be acked
// or nacked. It is closed when the engine has stopped.
func (e *Engine) Messages() <-chan *message.Message { return e.out }

// Stopping returns a context that ends when the engine stops taking messages: its context
// ended, Close began or the source closed. A transport's own loops end with it.
func (e *Engine) Stopping() context.Context { return e.stop }

// Done returns a channel closed after the messages channel, once the engine has stopped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Close stops the engine: no more messages are taken; handed-out messages get DrainTimeout
// to finish, then their contexts are cancelled and handlers get CloseTimeout to answer;
// messages not answered by then are abandoned. It returns when the messages channel is
// closed, and is idempotent.
func (e *Engine) Close() {
	e.close()
	<-e.done
}

// Offer hands d out, in the caller's order, for a transport that pushes messages (partition
// readers) instead of implementing Source: it waits for a free slot, then for the channel's
// reader, unless ctx ends or the engine stops first; then it returns false and the caller
// still owns d (no method of d but Message was called). On true the engine holds d as any
// fetched message, and calls Release where it stops before handing d out again.
func (e *Engine) Offer(ctx context.Context, d Delivery) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case e.slots <- struct{}{}: // a free slot: no need to watch ctx and stop
	default:
		select {
		case e.slots <- struct{}{}:
		case <-ctx.Done():
			return false
		case <-e.stop.Done():
			return false
		}
	}
	if !e.admit() {
		e.release(1)
		return false
	}
	l := e.leases.track(d, e.cfg.Lease)
	if !e.handOut(ctx.Done(), d, l) {
		e.leases.settle(l)
		e.handlers.Done()
		e.release(1)
		return false
	}
	return true
}

// admit counts a message as held, unless shutdown has begun.
func (e *Engine) admit() bool {
	e.admitMu.Lock()
	defer e.admitMu.Unlock()
	if e.stopped {
		return false
	}
	e.handlers.Add(1)
	return true
}

func (e *Engine) release(n int) {
	for range n {
		<-e.slots
	}
}

// handOut hands d out, unless the engine stops or cancel ends first, and passes it to a
// holder. It reports whether d was handed out.
func (e *Engine) handOut(cancel <-chan struct{}, d Delivery, l *lease) bool {
	if e.stop.Err() != nil {
		return false // arrived while stopping: give it back at once
	}
	msg, cancelMsg, _ := e.present(d, cancel)
	if msg == nil {
		return false
	}
	h := held{d: d, msg: msg, cancel: cancelMsg, lease: l}
	select {
	case e.idle <- h:
	default:
		go e.holder(h)
	}
	return true
}

// present hands out d's message with a fresh context, unless d has none (then dropped is
// true), or the engine stops or cancel ends first. On success it returns the message and
// the cancel of its context.
func (e *Engine) present(d Delivery, cancel <-chan struct{}) (msg *message.Message, cancelMsg context.CancelFunc, dropped bool) {
	msg = d.Message()
	if msg == nil {
		return nil, nil, true
	}
	ctx, cancelMsg := context.WithCancel(e.msgBase)
	msg.SetContext(ctx)
	select {
	case e.out <- msg: // the reader was waiting
		return msg, cancelMsg, false
	default:
	}
	select {
	case e.out <- msg:
		return msg, cancelMsg, false
	case <-e.stop.Done():
	case <-cancel:
	}
	cancelMsg()
	return nil, nil, false
}

// shutdown waits for fetching to stop, then lets held messages finish within the configured
// bounds, stops the heartbeat, finishes the transport and closes the channel.
func (e *Engine) shutdown(heartbeat chan struct{}) {
	<-e.stop.Done()
	e.admitMu.Lock()
	e.stopped = true
	e.admitMu.Unlock()
	e.fetchers.Wait()
	if e.queue != nil {
		close(e.queue) // the hand-out loop gives back what is left
	}
	if e.closing.Err() != nil && e.cfg.DrainTimeout > 0 {
		waitFor(&e.handlers, e.cfg.DrainTimeout)
	}
	e.cancelMsgs()
	if !waitFor(&e.handlers, e.cfg.CloseTimeout) {
		e.gaveUp.Store(true)
		e.signalHolders()
		e.handlers.Wait()
	}
	close(e.idle) // nothing is handed out any more: idle holders end
	if heartbeat != nil {
		heartbeat <- struct{}{} // the heartbeat ends when it takes this
	}
	if e.cfg.Finish != nil {
		e.cfg.Finish()
	}
	e.close()
	close(e.out)
	close(e.done)
	e.log.Debug().Msg("subscription closed")
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
