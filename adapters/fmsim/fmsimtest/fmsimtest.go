// Package fmsimtest is what the tests of model clients share when they run against fmsim: a
// simulator served in-process, a collector of streamed deltas and the check of a resumed
// stream, and a benchmark of one way of calling a model that reports per-call percentiles. Only tests import it.
package fmsimtest

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
)

// Start serves a new fmsim with cfg over HTTP in-process and returns it with its base URL;
// both stop at cleanup.
func Start(t testing.TB, cfg fmsim.Config) (*fmsim.Server, string) {
	t.Helper()
	sim := fmsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return sim, srv.URL
}

// Deltas collects the deltas a stream publishes: its Add is the stream's publish function.
// It is safe for concurrent use.
type Deltas struct {
	mu  sync.Mutex
	got []string
}

// Add records s.
func (d *Deltas) Add(s string) { d.mu.Lock(); d.got = append(d.got, s); d.mu.Unlock() }

// Len returns how many deltas were recorded.
func (d *Deltas) Len() int { d.mu.Lock(); defer d.mu.Unlock(); return len(d.got) }

// Joined returns the deltas recorded, joined.
func (d *Deltas) Joined() string { d.mu.Lock(); defer d.mu.Unlock(); return strings.Join(d.got, "") }

// CheckResumed checks an answer streamed from sim, which drops every stream after drop chunks
// (0: never), against the whole text want: the answer's text and the deltas d collected both
// equal want (else t fails at once), d holds a delta per chunk at least, and sim resumed every
// stream it dropped, or served one stream when it drops none.
func CheckResumed(t testing.TB, sim *fmsim.Server, drop int, want, text string, d *Deltas) {
	t.Helper()
	if text != want || d.Joined() != want {
		t.Fatalf("drop after %d: text %q, deltas %q; want both %q", drop, text, d.Joined(), want)
	}
	if d.Len() < len(fmsim.Chunks(want)) {
		t.Errorf("drop after %d: %d deltas, want one per chunk (%d)", drop, d.Len(), len(fmsim.Chunks(want)))
	}
	st := sim.Stats()
	if drop > 0 && (st.DroppedStreams == 0 || st.ResumedStreams != st.DroppedStreams) {
		t.Errorf("drop after %d: stats %+v, want every dropped stream resumed", drop, st)
	}
	if drop == 0 && st.Streams != 1 {
		t.Errorf("streams = %d, want 1", st.Streams)
	}
}

// Bench runs call as the sub-benchmark name: once first to warm the connection, then in
// b.Loop, reporting allocations and the calls' durations as p50 and p99 in microseconds.
func Bench(b *testing.B, name string, call func(ctx context.Context) error) {
	b.Run(name, func(b *testing.B) {
		ctx := context.Background()
		if err := call(ctx); err != nil { // warm the connection
			b.Fatal(err)
		}
		durs := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			if err := call(ctx); err != nil {
				b.Fatal(err)
			}
			durs = append(durs, time.Since(start))
		}
		reportPercentiles(b, durs)
	})
}

func reportPercentiles(b *testing.B, durs []time.Duration) {
	if len(durs) == 0 {
		return
	}
	slices.Sort(durs)
	at := func(q float64) float64 {
		return float64(durs[min(int(q*float64(len(durs))), len(durs)-1)]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
