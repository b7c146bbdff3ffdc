package delivery

import (
	"errors"
	"time"
)

// fetch calls Fetch while there is room for messages, until the engine stops.
func (e *Engine) fetch() {
	defer e.fetchers.Done()
	wait := time.Duration(0)
	for {
		n := e.acquire()
		if n == 0 {
			return
		}
		got := 0
		err := e.src.Fetch(e.stop, n, func(d Delivery) {
			if got == n {
				e.log.Error().Int("n", n).Msg("message source delivered more than it was asked for; giving the extra message back")
				d.Release()
				return
			}
			got++
			e.take(d)
		})
		e.release(n - got)
		if err == nil {
			wait = 0
			continue
		}
		if e.stop.Err() != nil {
			return
		}
		if errors.Is(err, ErrSourceClosed) {
			e.log.Error().Err(err).Msg("message source closed; subscription ends")
			e.cancelStop()
			return
		}
		wait = min(max(2*wait, 100*time.Millisecond), RetryWaitMax)
		e.log.Warn().Err(err).Dur("retry_in", wait).Msg("fetching messages failed; retrying")
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-e.stop.Done():
			t.Stop()
			return
		}
	}
}

// take queues a fetched message for hand-out, for which a slot is taken; a message that
// arrives while the engine stops is given back at once.
func (e *Engine) take(d Delivery) {
	if e.stop.Err() != nil || !e.admit() {
		d.Release()
		e.release(1)
		return
	}
	e.queue <- pending{d: d, lease: e.leases.track(d, e.cfg.Lease)} // never blocks: each holds a slot
}

// handOutFetched hands the fetched messages out in the order they came, giving back those
// left when the engine stops, until shutdown closes the queue.
func (e *Engine) handOutFetched() {
	for p := range e.queue {
		if !e.handOut(nil, p.d, p.lease) {
			e.leases.settle(p.lease)
			p.d.Release()
			e.handlers.Done()
			e.release(1)
		}
	}
}

// acquire waits for at least one free slot and takes up to MaxFetch; it returns how many it
// took, 0 when the engine stops. Under load slots free one at a time, and one fetch per
// message would cost a round trip each: when fewer than a quarter of the slots are free it
// gathers more for up to GatherWindow, a delay no job notices.
func (e *Engine) acquire() int {
	if e.stop.Err() != nil {
		return 0
	}
	select {
	case e.slots <- struct{}{}:
	case <-e.stop.Done():
		return 0
	}
	limit := e.cfg.MaxFetch
	n := 1 + e.grab(limit-1)
	if want := min(limit, cap(e.slots)/4); n < want {
		t := time.NewTimer(GatherWindow)
		defer t.Stop()
	gather:
		for n < want {
			select {
			case e.slots <- struct{}{}:
				n++
			case <-t.C:
				break gather
			case <-e.stop.Done():
				break gather
			}
		}
		n += e.grab(limit - n)
	}
	return n
}

// grab takes up to limit free slots without waiting and returns how many it took.
func (e *Engine) grab(limit int) int {
	n := 0
	for n < limit {
		select {
		case e.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}
