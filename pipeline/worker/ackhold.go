package worker

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
)

// How a message's acknowledgement waits for its archive write without keeping a worker from
// the next message (archive.write: before_ack). A Scheduler with SchedulerConfig.HeldAcks hands
// the router a stand-in of each message that carries an ackHold in its context. Process, once
// the delivery's outcome is recorded, leaves the wait for the archive write on the hold and
// returns: the router acks the stand-in, which frees the handler's place at once, and the
// Scheduler, its ack-holder, acks the transport's message only when the wait returned, or
// nacks it (an infrastructure retry, no attempt spent) when the write failed.

// ackHoldKey is the context key of a message's ackHold.
type ackHoldKey struct{}

// ackHold is what Process leaves for a Scheduler to do before the transport's message is
// answered: wait for the archive writes of waits through w. Both are set, at most once, by the
// handler before it returns; the Scheduler reads them once the router answered the stand-in,
// so no lock is needed: the ack of the stand-in orders the two. It is also the stand-in's
// context (its parent's, with the hold under ackHoldKey), so that a stand-in costs one
// allocation less.
type ackHold struct {
	context.Context
	w     *Worker
	waits []archiveWait
}

// Value returns h itself for ackHoldKey, and the parent context's values otherwise.
func (h *ackHold) Value(key any) any {
	if _, ok := key.(ackHoldKey); ok {
		return h
	}
	return h.Context.Value(key)
}

// leave hands the wait for waits to the Scheduler.
func (h *ackHold) leave(w *Worker, waits []archiveWait) { h.w, h.waits = w, waits }

// settle waits for what the handler left, if anything, and returns the delivery's outcome;
// pending reports whether the handler left a wait.
func (h *ackHold) settle(ctx context.Context) (out Outcome, pending bool) {
	if h.w == nil {
		return Outcome{}, false
	}
	return h.w.awaitArchive(ctx, h.waits), true
}

// ackHoldFromContext returns the ackHold of a message a Scheduler handed out with held acks,
// or nil: Process then waits for the archive write itself.
func ackHoldFromContext(ctx context.Context) *ackHold {
	h, _ := ctx.Value(ackHoldKey{}).(*ackHold)
	return h
}

// ackHolder counts the messages a Scheduler handed out and has not answered yet, the held
// acks among them, so that shutdown can wait for them. Safe for concurrent use.
type ackHolder struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero
}

// add counts one more message handed out.
func (a *ackHolder) add() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == 0 {
		a.idle = make(chan struct{})
	}
	a.n++
}

// done counts one message answered (or given up on).
func (a *ackHolder) done() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n--
	if a.n == 0 {
		close(a.idle)
	}
}

// wait blocks until every message handed out is answered or ctx ends, and reports whether
// every one is.
func (a *ackHolder) wait(ctx context.Context) bool {
	a.mu.Lock()
	if a.n == 0 {
		a.mu.Unlock()
		return true
	}
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// standIn returns the message the router gets in place of msg: the same id, payload and
// metadata (one map, so a nack delay the handler sets reaches the transport), msg's context
// with a fresh ackHold in it.
func standIn(msg *message.Message) (*message.Message, *ackHold) {
	h := &ackHold{Context: msg.Context()}
	s := message.NewMessage(msg.UUID, msg.Payload)
	s.Metadata = msg.Metadata
	s.SetContext(h)
	return s, h
}

// forward answers msg as the router answered its stand-in s, once the wait the handler left
// on h returned. handlerDone is called as soon as the router answered s (or ctx ended),
// before any wait. A message whose wait ends in a retry is nacked with the retry's delay in
// its metadata, as the job handler does.
func forward(ctx context.Context, msg, s *message.Message, h *ackHold, handlerDone func()) {
	select {
	case <-s.Acked():
	case <-s.Nacked():
		handlerDone()
		msg.Nack()
		return
	case <-ctx.Done():
		handlerDone()
		return
	}
	handlerDone()
	// The transport's message context ends when the subscriber gives up on the message
	// (closing): the wait then ends too, and the message is delivered again.
	out, pending := h.settle(msg.Context())
	if !pending {
		msg.Ack()
		return
	}
	if !out.Retry {
		// An ack that comes after the subscriber closed is ignored by it: the message is
		// then delivered again, and that delivery only archives its job again.
		msg.Ack()
		return
	}
	if out.Delay > 0 {
		msg.Metadata.Set(messages.MetaNackDelay, out.Delay.String())
	}
	msg.Nack()
}
