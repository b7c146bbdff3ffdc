package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Source is what a pulling transport implements: fetching messages. Everything else a
// subscription does (slots, hand-out, holding, answers, leases, drain) is the Engine's.
type Source interface {
	// Fetch waits for up to n messages (n ≥ 1) and passes each to deliver as it arrives, at
	// most n in all, calling deliver on the goroutine that called Fetch, never after it
	// returns. It
	// returns when it has delivered what one request brought, or when ctx ends (ctx ends when
	// the engine stops fetching); a request under way may finish first: what it delivers then
	// is given back with Release. A nil error with nothing delivered is an idle poll. An error
	// makes the engine wait (backing off up to RetryWaitMax) and call Fetch again, unless it
	// wraps ErrSourceClosed. A message the transport cannot decode is its own to handle (give
	// it back, leave it for its dead-letter policy); it is not delivered.
	//
	// The engine calls Fetch from Config.Fetchers goroutines at once, so it must be safe for
	// that many concurrent calls.
	Fetch(ctx context.Context, n int, deliver func(Delivery)) error
}

// Delivery is one fetched message, held by the engine until it is answered. The engine
// calls one of Ack, Nack, Release, or none when it abandons the message at close, one method
// at a time; only after a Nack that returned true (the transport kept the message) may
// another follow. Extend (through Extender) never runs during them, nor after them unless
// the delivery was kept. Once Ack, a Nack that returned false, or Release has returned (or
// Engine.Offer has refused it), the engine does not use the delivery again: the transport
// may reuse it.
type Delivery interface {
	// Message returns the Watermill message to hand out; the engine sets its context. It is
	// called once per hand-out: once, unless Nack returned true, then once per redelivery. It
	// returns nil when the message is no longer worth handing out (its transport has given it
	// to another consumer); the engine then drops it without answering.
	Message() *message.Message
	// Ack removes the message from its transport. Its slot is freed when Ack returns: a
	// transport that waits for a confirmation there bounds the unconfirmed acks too.
	Ack()
	// Nack asks the transport to deliver the message again, no sooner than delay (0: at once),
	// and returns false. A transport that cannot redeliver by itself (or not with this delay)
	// returns true: the engine then keeps the delivery, and its slot, and hands it out again
	// after delay.
	Nack(delay time.Duration) (again bool)
	// Release gives back a message the engine fetched, or kept after a Nack, and did not hand
	// out (it stopped first), to be delivered again at once, without counting as a failed
	// attempt where the transport can tell.
	Release()
}

// Extender is implemented by a Source whose fetched messages are leased: the transport hands
// a message to another consumer when its lease runs out (JetStream's ack wait, SQS's
// visibility timeout). With Config.Lease set, the engine renews the lease of each message it
// holds before it runs out, until the message is answered.
type Extender interface {
	// Extend renews the leases of ds (at most Config.ExtendBatch of them) for another
	// Config.Lease from now, and reports for each, in order, whether it was renewed; a nil
	// result means none was. It logs its own failures. The engine calls it from one goroutine
	// at a time, never with a delivery being or already answered, released or abandoned, and
	// holds back those until Extend returns.
	Extend(ctx context.Context, ds []Delivery) (renewed []bool)
}

// ErrSourceClosed, wrapped in an error from Fetch, says that no fetch can succeed any more
// (the connection was closed): the engine stops as if its context had ended.
var ErrSourceClosed = errors.New("message source is closed")
