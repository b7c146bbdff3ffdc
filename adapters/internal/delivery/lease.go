package delivery

import (
	"cmp"
	"context"
	"sync"
	"time"
)

// leases is the set of held messages whose leases the heartbeat renews.
type leases struct {
	mu   sync.Mutex
	held map[*lease]struct{} // nil: no renewals
}

// lease is one held message's lease.
type lease struct {
	d Delivery

	mu    sync.Mutex // held by the heartbeat while it renews the lease
	done  bool       // settled: no more renewals
	until time.Time  // when the lease runs out, as last renewed
}

// track starts renewing d's lease, which began now, and returns it; nil without renewals.
func (ls *leases) track(d Delivery, length time.Duration) *lease {
	if ls.held == nil {
		return nil
	}
	l := &lease{d: d, until: time.Now().Add(length)}
	ls.mu.Lock()
	ls.held[l] = struct{}{}
	ls.mu.Unlock()
	return l
}

// settle stops renewing l, waiting for a renewal under way, so that a renewal never lands
// after the answer that follows. It returns when the lease runs out, and false for a nil l.
// It is idempotent.
func (ls *leases) settle(l *lease) (until time.Time, ok bool) {
	if l == nil {
		return time.Time{}, false
	}
	l.mu.Lock()
	l.done = true
	until = l.until
	l.mu.Unlock()
	ls.mu.Lock()
	delete(ls.held, l)
	ls.mu.Unlock()
	return until, true
}

// resume renews l again after settle, for a message the engine keeps after a nack.
func (ls *leases) resume(l *lease) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.done = false
	l.mu.Unlock()
	ls.mu.Lock()
	ls.held[l] = struct{}{}
	ls.mu.Unlock()
}

// heartbeat renews, every quarter of the lease, the leases of held messages that have less
// than half of it left, ExtendBatch per call, until shutdown sends on stop.
func (e *Engine) heartbeat(stop chan struct{}) {
	length := e.cfg.Lease
	t := time.NewTicker(length / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		var due []*lease
		e.leases.mu.Lock()
		for l := range e.leases.held {
			if l.until.Sub(now) <= length/2 {
				due = append(due, l)
			}
		}
		e.leases.mu.Unlock()
		batch := cmp.Or(e.cfg.ExtendBatch, len(due))
		for len(due) > 0 {
			n := min(len(due), batch)
			e.extend(due[:n])
			due = due[n:]
		}
	}
}

// extend renews the leases of ls, skipping those settled meanwhile.
func (e *Engine) extend(ls []*lease) {
	length := e.cfg.Lease
	var locked []*lease
	var ds []Delivery
	for _, l := range ls {
		l.mu.Lock()
		if l.done {
			l.mu.Unlock()
			continue
		}
		locked = append(locked, l)
		ds = append(ds, l.d)
	}
	defer func() {
		for _, l := range locked {
			l.mu.Unlock()
		}
	}()
	if len(ds) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), length/2)
	defer cancel()
	renewed := e.ext.Extend(ctx, ds)
	for i, l := range locked {
		if i < len(renewed) && renewed[i] {
			l.until = start.Add(length)
		}
	}
}
