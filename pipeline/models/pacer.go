package models

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/infleet/infleet/pipeline"
)

// Pacing constants: how a model's call rate follows its throttling.
const (
	// paceDecrease is the multiplicative decrease of a cut.
	paceDecrease = 0.8
	// paceAnswered is the share of the rate the model answered in the last full second that
	// a cut goes down to at most.
	paceAnswered = 0.85
	// paceRecover is the additive increase per second, as a share of the rate set by the last
	// cut, while calls succeed.
	paceRecover = 0.04
	// paceFloor is the least paced rate, in calls per second.
	paceFloor = 0.2
	// paceExcess is how far the share of throttled calls of the last two seconds must rise
	// above the model's usual share (the least of the last paceHistory seconds) for a cut, at
	// least; a noisy share must rise by paceSigmas of its standard deviation too.
	paceExcess = 0.05
	paceSigmas = 2.5
	// paceRun is the run of throttled answers in a row that says the callers ran into the
	// model's rate whatever its usual share.
	paceRun = 8
	// paceFleetRunMin is the least run of throttles that calls for a cut when the pace is
	// shared.
	paceFleetRunMin = 4
	// paceJudgeAfter is how long after a cut it is judged.
	paceJudgeAfter = 2 * time.Second
	// paceKept is the share of the answers of the second before a cut that must still come
	// after it for the cut to stay: independent throttling loses answers in proportion to a
	// cut (to 63 % or less), a quota hardly any.
	paceKept = 0.7
	// paceKeptFleet is the share of the rate a shared cut set that the fleet must still be
	// answered at after it for the cut to stay: a quota answers nearly all of it, a steady
	// share of throttles that no pace cures answers that share less.
	paceKeptFleet = 0.75
	// paceTolerance is how long nothing is cut after a cut was undone.
	paceTolerance = 30 * time.Second
	// paceMinCalls is the least number of calls a share is measured over.
	paceMinCalls = 10
	// paceHistory is how many one-second windows the usual share is taken from.
	paceHistory = 30
	// paceUnpaceAfter is how long a paced model must see no cut, while calls ran well under
	// its pace, to be let unpaced again.
	paceUnpaceAfter = time.Minute
)

// unpaced is the limit of a model that is not paced: finite, because a rate.Limiter switched
// from rate.Inf to a finite limit at the instant of its last update computes NaN tokens (0 s
// times an infinite rate) and then allows every call.
const unpaced = rate.Limit(1e9)

// pacer paces one model's calls to what the model accepts, as additive-increase/
// multiplicative-decrease limiters and the AWS SDK's adaptive retry mode do. A model starts
// unpaced; a throttled call waits out its own Retry-After (in Fleet.call), which spreads the
// callers of a model over a quota's window as its slots free. When throttles come in a run, or
// the share of throttled calls of the last two seconds rises clearly above the model's usual
// share (the least of the last half minute's), the rate is cut to the lesser of 80 % of the
// current rate and 85 % of the rate the model answered in the last full second; at most once
// a second. Each success raises it again, by 4 % of the rate the cut set per second, and a
// pace that has seen no cut for a minute while calls ran at less than half of it is lifted.
// A cut is judged two seconds later: when the model then answered clearly less than before
// it and still throttled, the throttling did not answer the callers' rate (a steady
// background of throttles that no pace cures) and the cut only cost answers, so it is undone
// and nothing is cut for half a minute; fewer answers without throttles are the callers
// calling less, and the cut stands. Paced callers leave one at a time (a burst of one). Safe for concurrent use.
type pacer struct {
	lim *rate.Limiter
	// fleet, when set, shares the pace with the fleet's other processes: the fleet's rate
	// gates the calls, and this pacer's cuts and undos are proposed to it (see fleetPace).
	fleet *fleetPace
	// callers counts the calls between wait and done (or an attempt's end), which sizes
	// the run of throttles that says the callers ran into the model's rate when the pace is
	// shared: each process then has only its share of the fleet's callers.
	callers atomic.Int64

	mu      sync.Mutex
	now     func() time.Time
	lastCut time.Time
	lastSet float64 // the rate set by the last cut
	win     paceWindow
	prev    paceWindow // the last full second
	history []float64  // throttled shares of recent full seconds with enough calls
	run     int        // throttled answers in a row
	first   time.Time  // the first outcome recorded

	probe         paceProbe // the cut being judged
	tolerantUntil time.Time
}

// paceProbe is a cut under judgement: when it was made, the answer rate before it, the
// limit to go back to, and the answers since.
type paceProbe struct {
	start  time.Time
	before float64
	undo   rate.Limit
	ok     int
	midAt  time.Time // paceJudgeAfter/2 after start, when ok was mid
	mid    int
	// throttled counts the throttled answers since midAt: a cut after which the model
	// throttles no more is kept, however few answers came (the callers may have called less).
	throttled int
}

// paceWindow counts one second's calls.
type paceWindow struct {
	start                time.Time
	calls, throttled, ok int
}

func newPacer() *pacer {
	return &pacer{lim: rate.NewLimiter(unpaced, 1), now: time.Now}
}

// wait blocks until the model's pace lets one more call go, within ctx. It fails as throttled,
// saying when to come back, when ctx ends first or would.
func (p *pacer) wait(ctx context.Context, name string) error {
	if p.fleet != nil {
		if handled, err := p.fleet.wait(ctx); handled {
			return err
		}
	}
	if err := p.lim.Wait(ctx); err != nil {
		return pacedErr(name, time.Duration(float64(time.Second)/max(float64(p.lim.Limit()), paceFloor)), err)
	}
	return nil
}

// pacedErr is a call held back by the pace past its deadline: throttling, to be retried later.
func pacedErr(name string, after time.Duration, err error) error {
	return &pipeline.ModelError{Kind: pipeline.ModelThrottled, RetryAfter: after,
		Err: fmt.Errorf("model %s is paced down after throttling and the call's deadline came first (the job waits and is retried): %w", name, err)}
}

// paced returns the calls per second the model is paced to (the fleet's, when shared and
// paced); 0 when unpaced.
func (p *pacer) paced() float64 {
	if p.fleet != nil {
		if r := p.fleet.rate(); r > 0 {
			return r
		}
	}
	if l := p.lim.Limit(); l < unpaced {
		return float64(l)
	}
	return 0
}

// done records a call's outcome: throttled or answered. Other failures say nothing about the
// pace and are not recorded.
func (p *pacer) done(throttled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.first.IsZero() {
		p.first = now
	}
	p.roll(now)
	p.win.calls++
	p.judge(now)
	if !throttled {
		p.win.ok++
		p.probe.ok++
		p.run = 0
		if p.fleet != nil {
			p.fleet.answered()
		}
		if lim := float64(p.lim.Limit()); lim < float64(unpaced) {
			// Additive increase, paced per second rather than per call: each success adds
			// its share of paceRecover*lastMax per second.
			next := lim + paceRecover*p.lastSet/lim
			if p.now().Sub(p.lastCut) > paceUnpaceAfter && p.sendRate(now) < lim/2 {
				next = float64(unpaced)
			}
			p.lim.SetLimitAt(now, rate.Limit(next))
		}
		return
	}
	p.win.throttled++
	p.run++
	if !p.probe.midAt.IsZero() {
		p.probe.throttled++
	}
	if p.fleet != nil {
		p.fleet.throttled(now)
	}
	if now.Sub(p.lastCut) < time.Second {
		return
	}
	calls, throttledN := p.win.calls+p.prev.calls, p.win.throttled+p.prev.throttled
	if len(p.history) == 0 || calls < paceMinCalls || !p.probe.start.IsZero() {
		return
	}
	before := float64(p.prev.ok)
	share := float64(throttledN) / float64(calls)
	u := p.usual()
	sd := math.Sqrt(u * (1 - u) / float64(calls))
	rising := share > u+max(paceExcess, paceSigmas*sd)
	run := p.run >= p.runNeeded()
	if (!rising && !run) || now.Before(p.tolerantUntil) {
		return
	}
	p.run = 0
	cur := float64(p.lim.Limit())
	if cur >= float64(unpaced) {
		cur = p.sendRate(now)
	}
	next := max(paceFloor, min(paceDecrease*cur, paceAnswered*before))
	p.probe = paceProbe{start: now, before: before, undo: p.lim.Limit()}
	p.lastSet, p.lastCut = next, now
	p.lim.SetLimitAt(now, rate.Limit(next))
	if p.fleet != nil {
		p.fleet.proposeCut(next, p.answerRate(now), now.Sub(p.first))
	}
}

// judge ends a cut's probe paceJudgeAfter after it: when the model answered clearly less in
// the second half of that time than in the second before the cut and still throttled then
// (the throttling did not answer the callers' rate, so the cut only cost answers), the cut is
// undone and nothing is cut for paceTolerance. Fewer answers without throttles are the
// callers calling less (a process short of CPU, a backlog running out): the cut stands.
func (p *pacer) judge(now time.Time) {
	if p.probe.start.IsZero() {
		return
	}
	if p.probe.midAt.IsZero() {
		// The first second after a cut is not judged: callers are still waiting out the
		// Retry-After of the throttles that led to it.
		if now.Sub(p.probe.start) >= paceJudgeAfter/2 {
			p.probe.midAt, p.probe.mid = now, p.probe.ok
		}
		return
	}
	if now.Sub(p.probe.start) < paceJudgeAfter {
		return
	}
	after := float64(p.probe.ok-p.probe.mid) / now.Sub(p.probe.midAt).Seconds()
	if after < paceKept*p.probe.before && p.probe.throttled > 0 && (p.fleet == nil || p.fleet.rate() <= 0) {
		// A shared cut is judged by the fleet's answers (fleetPace.judge), not this
		// process's share of them.
		p.lim.SetLimitAt(now, p.probe.undo)
		p.tolerantUntil = now.Add(paceTolerance)
	}
	p.probe = paceProbe{}
}

// roll closes the current window when a second has passed.
func (p *pacer) roll(now time.Time) {
	if p.win.start.IsZero() {
		p.win.start = now
		return
	}
	if now.Sub(p.win.start) < time.Second {
		return
	}
	if p.win.calls >= paceMinCalls {
		p.history = append(p.history, float64(p.win.throttled)/float64(p.win.calls))
		if len(p.history) > paceHistory {
			p.history = p.history[1:]
		}
	}
	if now.Sub(p.win.start) < 2*time.Second {
		p.prev = p.win
	} else {
		p.prev = paceWindow{}
	}
	p.win = paceWindow{start: now}
}

// runNeeded is the run of throttled answers in a row that calls for a cut: paceRun, or when
// the pace is shared and this process has fewer callers, one per caller, at least
// paceFleetRunMin.
func (p *pacer) runNeeded() int {
	if p.fleet == nil {
		return paceRun
	}
	return int(min(paceRun, max(paceFleetRunMin, p.callers.Load())))
}

// usual is the model's usual share of throttled calls: the least of the recent seconds'.
func (p *pacer) usual() float64 {
	u := 1.0
	for _, s := range p.history {
		u = min(u, s)
	}
	return u
}

// sendRate is the calls per second of the current and last second.
func (p *pacer) sendRate(now time.Time) float64 {
	return float64(p.win.calls+p.prev.calls) / p.span(now)
}

// answerRate is the answered calls per second of the current and last second.
func (p *pacer) answerRate(now time.Time) float64 {
	return float64(p.win.ok+p.prev.ok) / p.span(now)
}

func (p *pacer) span(now time.Time) float64 {
	d := now.Sub(p.win.start)
	if p.prev.calls > 0 {
		d += time.Second
	}
	return max(d.Seconds(), 1)
}
