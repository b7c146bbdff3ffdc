package delivery

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
)

// holder holds h, then whatever a hand-out passes it on idle, until shutdown closes idle.
// Holders outlive their messages (at most one per slot): a goroutine per message would pay
// for its start and for growing its stack every time.
func (e *Engine) holder(h held) {
	sig := make(chan struct{}, 1)
	e.signalsMu.Lock()
	e.signals = append(e.signals, sig)
	e.signalsMu.Unlock()
	for ok := true; ok; h, ok = <-e.idle {
		e.hold(h, sig)
	}
}

// signalHolders wakes every holder to look at msgsEnded and gaveUp again.
func (e *Engine) signalHolders() {
	e.signalsMu.Lock()
	defer e.signalsMu.Unlock()
	for _, c := range e.signals {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// hold waits for the answer to h.msg and passes it on to h.d: an ack, a nack with the delay
// the handler asked for (handing the message out again after it where the transport cannot
// redeliver it), or nothing when shutdown gives up on it. The slot taken for the message is
// held all the while.
func (e *Engine) hold(h held, sig <-chan struct{}) {
	defer e.handlers.Done()
	defer e.release(1)
	for {
		switch e.await(h.msg, h.cancel, sig) {
		case acked:
			e.leases.settle(h.lease)
			h.d.Ack()
			return
		case nacked:
			e.leases.settle(h.lease)
			delay := e.nackDelay(h.msg)
			if !h.d.Nack(delay) {
				return
			}
			e.leases.resume(h.lease)
			if !e.handOutAgain(&h, delay) {
				e.leases.settle(h.lease)
				return
			}
		case abandoned:
			ev := e.log.Warn().Str("message_uuid", h.msg.UUID)
			if until, ok := e.leases.settle(h.lease); ok {
				ev = ev.Dur("redelivery_in", time.Until(until))
			}
			ev.Msg("handler did not answer before close timed out; the transport will deliver the message again")
			return
		}
	}
}

// handOutAgain hands h's delivery out again after delay, for a transport that kept it on a
// nack, and reports whether it did. When the engine stops first the delivery is released
// (after its lease is settled); when the transport no longer wants it handed out, dropped.
func (e *Engine) handOutAgain(h *held, delay time.Duration) bool {
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-e.stop.Done():
			t.Stop()
			e.leases.settle(h.lease)
			h.d.Release()
			return false
		}
	}
	msg, cancel, dropped := e.present(h.d, nil)
	if dropped {
		return false
	}
	if msg == nil {
		e.leases.settle(h.lease)
		h.d.Release()
		return false
	}
	h.msg, h.cancel = msg, cancel
	return true
}

// answer is how a handed-out message ended.
type answer int

const (
	acked answer = iota
	nacked
	abandoned
)

// await waits for msg's answer, cancelling its context as soon as msgsEnded is set and in
// any case before it returns. sig is the holder's signal channel (see signalHolders).
func (e *Engine) await(msg *message.Message, cancel context.CancelFunc, sig <-chan struct{}) answer {
	defer cancel()
	for cancelled := false; ; {
		if !cancelled && e.msgsEnded.Load() {
			cancel()
			cancelled = true
		}
		if e.gaveUp.Load() {
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
func (e *Engine) nackDelay(msg *message.Message) time.Duration {
	d, ok := messages.NackDelay(msg.Metadata)
	if !ok {
		e.log.Warn().Str("message_uuid", msg.UUID).Str("nack_delay", msg.Metadata.Get(messages.MetaNackDelay)).
			Msg("metadata nack delay is not a Go duration; redelivering at once")
	}
	return d
}
