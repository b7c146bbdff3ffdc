// Package heapfloor keeps the Go heap's goal at or above a floor, so that a process whose live
// heap is small does not collect garbage many times a second.
//
// The runtime sets its next heap goal to about twice the live heap (GOGC=100). A worker or an
// ingress under load keeps a live heap of a few tens of megabytes and allocates it again every
// few hundred milliseconds, so it spends several per cent of its CPU marking, and the requests
// that arrive while it marks wait longest. Raising GOGC for good would multiply a large live
// heap too (a process holding a deep queue); a floor raises the goal only where the live heap
// is small: GOGC is set after each collection so that the next goal is the floor, and set back
// to its starting value once twice the live heap reaches the floor.
package heapfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// maxPercent bounds the GOGC set: with a live heap of a few megabytes the floor would
// otherwise ask for many thousand per cent, and a live heap that then grows fast would overshoot
// the floor by as many times before the next collection sets it back.
const maxPercent = 1000

// Start keeps the heap goal at or above floor bytes until the returned stop is called, by
// setting GOGC (runtime/debug.SetGCPercent) after each collection. The GOGC the process started
// with is the least it sets, and stop restores it. Start does nothing (and stop nothing) when
// floor is 0 or GOGC is off; a second Start before the first's stop does nothing too.
func Start(floor uint64) (stop func()) {
	if floor == 0 {
		return func() {}
	}
	base := gcPercent()
	if base < 0 {
		return func() {}
	}
	mu.Lock()
	defer mu.Unlock()
	if current != nil {
		return func() {}
	}
	t := &tuner{floor: floor, base: base, set: base}
	t.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current = t
	t.arm()
	return t.stop
}

var (
	mu      sync.Mutex
	current *tuner
)

// tuner is one Start's state, read and written under mu.
type tuner struct {
	floor   uint64
	base    int
	set     int
	sample  []metrics.Sample
	stopped bool
}

// sentinel is an object the collector finds unreachable in every cycle; its finalizer runs
// once per cycle, on the runtime's finalizer goroutine, and arms the next one. It holds a
// pointer, so it is never a tiny allocation (those share a block with other objects and are
// not collected alone).
type sentinel struct {
	t *tuner
}

func (t *tuner) arm() {
	s := &sentinel{t: t}
	runtime.SetFinalizer(s, func(s *sentinel) { s.t.collected() })
}

// collected runs after a collection: it sets GOGC for the next goal and arms the next call.
func (t *tuner) collected() {
	mu.Lock()
	defer mu.Unlock()
	if t.stopped {
		return
	}
	metrics.Read(t.sample)
	if v := t.sample[0].Value; v.Kind() == metrics.KindUint64 {
		if p := percentFor(t.floor, v.Uint64(), t.base); p != t.set {
			debug.SetGCPercent(p)
			t.set = p
		}
	}
	t.arm()
}

func (t *tuner) stop() {
	mu.Lock()
	defer mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	current = nil
	debug.SetGCPercent(t.base)
}

// gcPercent is the GOGC in force, -1 when off.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 100
	}
	v := s[0].Value.Uint64()
	if v > math.MaxInt32 {
		return -1
	}
	return int(v)
}

// percentFor is the GOGC that puts the next heap goal (live × (1 + GOGC/100)) at floor, never
// below base nor above maxPercent, rounded to a multiple of 25 so that a live heap that moves
// a little does not change it at every collection.
func percentFor(floor, live uint64, base int) int {
	if live == 0 {
		return max(base, maxPercent)
	}
	p := (float64(floor)/float64(live) - 1) * 100
	p = math.Ceil(p/25) * 25
	return int(min(max(p, float64(base)), float64(max(base, maxPercent))))
}
