package heapfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// collectUntil runs collections until cond holds (the tuner works on the finalizer goroutine,
// after a collection) or a few seconds pass.
func collectUntil(t *testing.T, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		if cond() {
			return true
		}
	}
	return false
}

func TestSmallLiveHeapGetsTheFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := Start(256 << 20)
	// A test binary's live heap is a few megabytes: the goal the floor asks for is far above
	// twice that, so GOGC goes up, to at most maxPercent.
	if !collectUntil(t, func() bool { return gcPercent() > 100 }) {
		t.Fatalf("GOGC %d after collections with a 256 MiB floor and a small live heap, want above 100", gcPercent())
	}
	if p := gcPercent(); p > maxPercent {
		t.Fatalf("GOGC %d, want at most %d", p, maxPercent)
	}
	stop()
	if p := gcPercent(); p != 100 {
		t.Fatalf("GOGC %d after stop, want the 100 it started with", p)
	}
	// Stopped, it no longer sets anything.
	debug.SetGCPercent(150)
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	if p := gcPercent(); p != 150 {
		t.Fatalf("GOGC %d after a stopped tuner saw collections, want 150 as set", p)
	}
}

var retained [][]byte

func TestLargeLiveHeapKeepsItsGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	// 48 MiB live: twice it is above a 32 MiB floor, so the floor asks for nothing.
	for range 48 {
		retained = append(retained, make([]byte, 1<<20))
	}
	defer func() { retained = nil }()
	stop := Start(32 << 20)
	defer func() { stop() }()
	seen := 0
	collectUntil(t, func() bool { seen++; return seen == 5 })
	if p := gcPercent(); p != 100 {
		t.Fatalf("GOGC %d with a live heap above the floor, want 100", p)
	}
	// The floor's least is the GOGC the process started with.
	stop()
	debug.SetGCPercent(300)
	stop = Start(32 << 20)
	collectUntil(t, func() bool { seen++; return seen == 10 })
	if p := gcPercent(); p != 300 {
		t.Fatalf("GOGC %d with a live heap above the floor and GOGC 300 at start, want 300", p)
	}
}

func TestOffAndOnce(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	Start(0)() // nothing to stop
	stop := Start(256 << 20)
	defer stop()
	second := Start(512 << 20)
	second() // must not stop the first
	if !collectUntil(t, func() bool { return gcPercent() > 100 }) {
		t.Fatalf("GOGC %d: a second Start's stop stopped the first", gcPercent())
	}
	stop()
	debug.SetGCPercent(-1)
	stop = Start(256 << 20)
	defer stop()
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // time for a tuner's finalizer to run
	}
	if p := gcPercent(); p != -1 {
		t.Fatalf("GOGC %d: Start with GC off turned it on", p)
	}
}

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		floor, live uint64
		base, want  int
	}{
		{64 << 20, 16 << 20, 100, 300},
		{64 << 20, 20 << 20, 100, 225}, // 220 rounded up to a multiple of 25
		{64 << 20, 40 << 20, 100, 100}, // 60 is below the base
		{64 << 20, 200 << 20, 100, 100},
		{64 << 20, 1 << 20, 100, maxPercent},
		{64 << 20, 0, 100, maxPercent},
		{64 << 20, 40 << 20, 150, 150},
		{64 << 20, 1 << 20, 2000, 2000}, // a base above maxPercent stays
	} {
		if got := percentFor(c.floor, c.live, c.base); got != c.want {
			t.Errorf("percentFor(floor %d MiB, live %d MiB, base %d) = %d, want %d", c.floor>>20, c.live>>20, c.base, got, c.want)
		}
	}
}
