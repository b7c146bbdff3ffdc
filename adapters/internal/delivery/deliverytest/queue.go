// Package deliverytest tests message sources for the delivery engine: Run is the engine's
// conformance suite, which a transport's Source passes beside Watermill's universal Pub/Sub
// suite, and Queue is an in-memory Source with a leasing broker's semantics, for the engine's
// own tests and examples. Subscribe, PublishN, Receive and NoMessage serve a transport's own
// tests, and BenchConsumeAck its consume benchmark.
package deliverytest

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/adapters/internal/delivery"
)

// MetaDeliveries is set by Queue on every message it delivers: how many times it has been
// delivered, from 1.
const MetaDeliveries = "deliverytest_deliveries"

// Stats counts what happened to a Queue's messages.
type Stats struct {
	// Published, Acked, Nacked and Released count messages stored and answers taken.
	Published, Acked, Nacked, Released int
	// Delivered counts deliveries, first ones and redeliveries alike.
	Delivered int
	// Extended counts lease renewals; Expired counts leases that ran out.
	Extended, Expired int
	// MaxFetch is the largest n Fetch was asked for.
	MaxFetch int
	// Ready is how many messages wait to be fetched; InFlight how many are fetched and not yet
	// answered or expired.
	Ready, InFlight int
}

// Queue is an in-memory message queue that behaves like a leasing broker (a JetStream work
// queue, an SQS queue): a fetched message is hidden until it is acked (then gone), nacked
// (back after the delay), released (back at once, first in line) or its lease runs out (back
// then, unless renewed with Extend). Every engine fetching from one Queue shares its
// messages, one delivery each. It is a delivery.Source and a delivery.Extender, safe for
// concurrent use.
type Queue struct {
	lease time.Duration

	mu       sync.Mutex
	ready    []*entry
	wake     chan struct{} // closed and replaced when ready gains a message
	inFlight map[*entry]struct{}
	stats    Stats
}

var (
	_ delivery.Source   = (*Queue)(nil)
	_ delivery.Extender = (*Queue)(nil)
)

// entry is one stored message.
type entry struct {
	msg        *message.Message // as published
	deliveries int
	timer      *time.Timer // runs out the lease of the delivery in flight
	until      time.Time   // when that lease runs out
}

// NewQueue returns an empty Queue whose deliveries are leased for lease (0: not leased, kept
// until answered).
func NewQueue(lease time.Duration) *Queue {
	return &Queue{lease: lease, wake: make(chan struct{}), inFlight: map[*entry]struct{}{}}
}

// Publish stores msgs at the end of the queue.
func (q *Queue) Publish(msgs ...*message.Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range msgs {
		q.ready = append(q.ready, &entry{msg: m.Copy()})
		q.stats.Published++
	}
	q.notify()
}

// notify wakes waiting fetches; q.mu is held.
func (q *Queue) notify() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// Stats returns the counts so far.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Ready, s.InFlight = len(q.ready), len(q.inFlight)
	return s
}

// Fetch waits until a message is ready, or ctx ends, and delivers up to n.
func (q *Queue) Fetch(ctx context.Context, n int, deliver func(delivery.Delivery)) error {
	q.mu.Lock()
	q.stats.MaxFetch = max(q.stats.MaxFetch, n)
	for len(q.ready) == 0 {
		wake := q.wake
		q.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	k := min(n, len(q.ready))
	batch := make([]*queueDelivery, k)
	for i, e := range q.ready[:k] {
		e.deliveries++
		q.stats.Delivered++
		q.inFlight[e] = struct{}{}
		d := &queueDelivery{q: q, e: e, n: e.deliveries}
		if q.lease > 0 {
			e.until = time.Now().Add(q.lease)
			e.timer = time.AfterFunc(q.lease, d.expire)
		} else {
			e.timer = time.NewTimer(time.Hour) // a stand-in: in flight, never expiring
			e.timer.Stop()
		}
		batch[i] = d
	}
	q.ready = q.ready[k:]
	q.mu.Unlock()
	for _, d := range batch {
		deliver(d)
	}
	return nil
}

// Extend renews the leases of ds that are still current.
func (q *Queue) Extend(_ context.Context, ds []delivery.Delivery) []bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	renewed := make([]bool, len(ds))
	for i, d := range ds {
		qd := d.(*queueDelivery)
		if !qd.current() || q.lease == 0 {
			continue
		}
		qd.e.until = time.Now().Add(q.lease)
		qd.e.timer.Reset(q.lease)
		q.stats.Extended++
		renewed[i] = true
	}
	return renewed
}

// queueDelivery is one delivery of an entry; n tells it from the entry's later deliveries.
type queueDelivery struct {
	q *Queue
	e *entry
	n int
}

// current reports whether d is the entry's delivery in flight; q.mu is held.
func (d *queueDelivery) current() bool {
	_, ok := d.q.inFlight[d.e]
	return ok && d.e.deliveries == d.n
}

// Message returns a copy of the stored message with MetaDeliveries set.
func (d *queueDelivery) Message() *message.Message {
	m := d.e.msg.Copy()
	m.Metadata.Set(MetaDeliveries, strconv.Itoa(d.n))
	return m
}

// Ack removes the message.
func (d *queueDelivery) Ack() {
	d.answer(func() { d.q.stats.Acked++ })
}

// Nack puts the message back after delay.
func (d *queueDelivery) Nack(delay time.Duration) bool {
	d.answer(func() {
		d.q.stats.Nacked++
		if delay <= 0 {
			d.q.ready = append(d.q.ready, d.e)
			d.q.notify()
			return
		}
		time.AfterFunc(delay, func() {
			d.q.mu.Lock()
			defer d.q.mu.Unlock()
			d.q.ready = append(d.q.ready, d.e)
			d.q.notify()
		})
	})
	return false
}

// Release puts the message back first in line.
func (d *queueDelivery) Release() {
	d.answer(func() {
		d.q.stats.Released++
		d.q.ready = append([]*entry{d.e}, d.q.ready...)
		d.q.notify()
	})
}

// answer ends d's delivery and runs then, unless the lease has run out already (the
// message was delivered again or waits for it: a late answer is lost, as with a broker).
func (d *queueDelivery) answer(then func()) {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	if !d.current() {
		return
	}
	d.e.timer.Stop()
	delete(d.q.inFlight, d.e)
	then()
}

// expire puts the message back when its lease runs out. A timer that fired while Extend
// renewed the lease finds it renewed, and fires again.
func (d *queueDelivery) expire() {
	d.q.mu.Lock()
	defer d.q.mu.Unlock()
	if !d.current() || time.Now().Before(d.e.until) {
		return
	}
	delete(d.q.inFlight, d.e)
	d.q.stats.Expired++
	d.q.ready = append(d.q.ready, d.e)
	d.q.notify()
}
