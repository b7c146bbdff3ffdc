package models

import (
	"math/rand/v2"
	"testing"
	"time"
)

// simulatePace drives a pacer on a fake clock for d with callers that would call 200 times a
// second, and returns the answers and calls per second of the last 10 s. throttle decides
// each call at its time, given the times of the calls the model answered so far. It also
// returns the pace at the end (0: unpaced).
func simulatePace(d time.Duration, throttle func(now time.Time, answered []time.Time) bool) (answers, calls, pace float64) {
	t0 := time.Unix(1_700_000_000, 0)
	now := t0
	p := newPacer()
	p.now = func() time.Time { return now }
	var answered []time.Time
	var nAns, nCalls int
	const step = 5 * time.Millisecond
	for now.Before(t0.Add(d)) {
		for range 1 { // 200 calls a second at most, one per step
			if !p.lim.AllowN(now, 1) {
				break
			}
			th := throttle(now, answered)
			if !th {
				answered = append(answered, now)
			}
			p.done(th)
			if now.After(t0.Add(d - 10*time.Second)) {
				nCalls++
				if !th {
					nAns++
				}
			}
		}
		now = now.Add(step)
	}
	return float64(nAns) / 10, float64(nCalls) / 10, p.paced()
}

// Throttling at a steady 30 %, independent of the rate and with runs of ten now and then (as
// completions bunch up), must not pace the model down over a few minutes.
func TestPaceDoesNotCollapseUnderRandomThrottling(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	run := 0
	answers, calls, _ := simulatePace(3*time.Minute, func(now time.Time, _ []time.Time) bool {
		if now.UnixMilli()%3000 == 0 {
			run = 10
		}
		if run > 0 {
			run--
			return true
		}
		return rng.Float64() < 0.3
	})
	t.Logf("last 10 s: %.0f answers/s of %.0f calls/s (unpaced: 140 of 200)", answers, calls)
	if answers < 110 {
		t.Errorf("%.0f answers/s after 3 minutes of random throttling, want near the unpaced 140: the pace collapsed", answers)
	}
}

// A quota of 50 calls per sliding second, with callers wanting 200: the pace settles near 50
// with few throttled calls.
func TestPaceSettlesUnderAQuota(t *testing.T) {
	t.Parallel()
	answers, calls, pace := simulatePace(time.Minute, func(now time.Time, answered []time.Time) bool {
		n := 0
		for i := len(answered) - 1; i >= 0 && now.Sub(answered[i]) < time.Second; i-- {
			n++
		}
		return n >= 50
	})
	t.Logf("last 10 s: %.1f answers/s, %.3f calls per answer; paced to %.1f/s", answers, calls/answers, pace)
	if pace <= 0 || pace > 60 {
		t.Errorf("paced to %.1f calls/s at the end, want near the quota of 50 (0 is unpaced)", pace)
	}
	if answers < 42 || calls/answers > 1.1 {
		t.Errorf("%.1f answers/s with %.3f calls per answer, want near 50/s with at most 1.1", answers, calls/answers)
	}
}

// A quota of 50 calls per sliding second cuts the pace; right after the cut the callers fall
// to 10 calls a second (a process short of CPU) and are never throttled again. The cut must
// stand: fewer answers without throttles are not throttling that no pace cures.
func TestPaceKeepsACutWhenCallersCallLess(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	now := t0
	p := newPacer()
	p.now = func() time.Time { return now }
	var answered []time.Time
	var cutAt time.Time
	for now.Before(t0.Add(30 * time.Second)) {
		if cutAt.IsZero() && !p.probe.start.IsZero() {
			cutAt = now
		}
		step := 5 * time.Millisecond
		if !cutAt.IsZero() {
			step = 100 * time.Millisecond // starved callers: 10 calls a second
		}
		if p.lim.AllowN(now, 1) {
			n := 0
			for i := len(answered) - 1; i >= 0 && now.Sub(answered[i]) < time.Second; i-- {
				n++
			}
			th := n >= 50
			if !th {
				answered = append(answered, now)
			}
			p.done(th)
		}
		if !cutAt.IsZero() && now.Sub(cutAt) > 2*paceJudgeAfter {
			break
		}
		now = now.Add(step)
	}
	if cutAt.IsZero() {
		t.Fatal("the quota never led to a cut")
	}
	if lim := float64(p.lim.Limit()); lim >= float64(unpaced) {
		t.Errorf("the cut at %s was undone once the callers called less, without a throttle since", cutAt.Sub(t0))
	}
	if !p.tolerantUntil.IsZero() {
		t.Errorf("cuts are held until %s: the cut was judged in vain", p.tolerantUntil.Sub(t0))
	}
}
