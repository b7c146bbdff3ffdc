package models

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// Fleet figures: every process records its calls of each model by minute (calls, errors,
// throttles, tokens and a latency histogram, pipeline.ModelFigures) beside its ring of recent
// calls, and PublishStats writes the minutes that changed, with the process's breaker state
// and a heartbeat, to a pipeline.ModelStatsStore every StatsConfig.Interval: a few rows a
// second per process, off the call path (a call only adds to counters under the lock it
// already takes). FleetReports merges what every process wrote into the reports of GET
// /v1/models, in any process, an ingress included.

// Fleet-figure defaults and bounds.
const (
	// DefaultStatsInterval is how often PublishStats writes by default.
	DefaultStatsInterval = time.Second
	// StaleIntervals is how many intervals without a heartbeat make a process stale: its
	// circuit is no longer shown (its calls still count).
	StaleIntervals = 3
	// FleetWindow is what the fleet's latency, error and throttle figures cover: this minute
	// and the four before it.
	FleetWindow = 5 * time.Minute
	// statsWriteWait bounds one write of the figures.
	statsWriteWait = 10 * time.Second
)

// minuteFigures are one minute's counts of a model's calls in this process.
type minuteFigures struct {
	calls, errors, throttles, in, out int64
	latency                           pipeline.ModelLatency
	// dirty is set by each call and cleared when a write takes the figures.
	dirty bool
}

func (m *minuteFigures) add(d time.Duration, ok, throttled bool, in, out int) {
	m.calls++
	if !ok {
		m.errors++
	}
	if throttled {
		m.throttles++
	}
	m.in += int64(in)
	m.out += int64(out)
	m.latency.Add(d)
	m.dirty = true
}

// minute returns the figures of now's minute. Called with mu held.
func (s *stats) minute(now time.Time) *minuteFigures {
	key := now.Unix() - now.Unix()%60
	m := s.minutes[key]
	if m == nil {
		m = &minuteFigures{}
		s.minutes[key] = m
	}
	return m
}

// figures returns the minutes that changed since the last write, and now's minute always (it
// carries the heartbeat), as ModelFigures of model with the given circuit, and marks them
// written (settled tells it how the write went); with all, it returns every minute it holds
// and marks nothing.
func (s *stats) figures(model, circuit string, now time.Time, all bool) []pipeline.ModelFigures {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.minute(now)
	cur := now.Unix() - now.Unix()%60
	var out []pipeline.ModelFigures
	for key, m := range s.minutes {
		if !all && !m.dirty && key != cur {
			continue
		}
		if !all {
			m.dirty = false
		}
		out = append(out, pipeline.ModelFigures{
			Model: model, Minute: time.Unix(key, 0).UTC(),
			Calls: m.calls, Errors: m.errors, Throttles: m.throttles, InputTokens: m.in, OutputTokens: m.out,
			Latency: m.latency, Circuit: circuit, Seen: now,
		})
	}
	return out
}

// settled forgets the past minutes the store has (ok), or marks the written ones to be
// written again (not ok). Minutes older than the store keeps are dropped either way.
func (s *stats) settled(written []pipeline.ModelFigures, ok bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := now.Unix() - now.Unix()%60
	if !ok {
		for _, f := range written {
			if m := s.minutes[f.Minute.Unix()]; m != nil {
				m.dirty = true
			}
		}
	}
	for key, m := range s.minutes {
		if key < cur && !m.dirty || now.Sub(time.Unix(key, 0)) > pipeline.ModelStatsKeep {
			delete(s.minutes, key)
		}
	}
}

// StatsConfig configures PublishStats.
type StatsConfig struct {
	// Store keeps the figures of every process. Required.
	Store pipeline.ModelStatsStore
	// Process names this process in the figures, unique in the fleet. Default the host name,
	// the process id and a random suffix.
	Process string
	// Interval is how often the figures are written. Default 1s.
	Interval time.Duration
	Logger   zerolog.Logger
}

// ProcessName returns a name for this process unique in a fleet: host, pid and a random
// suffix, for StatsConfig.Process.
func ProcessName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", cmp.Or(host, "host"), os.Getpid(), processID()[:6])
}

// PublishStats writes this process's figures of every configured model to cfg.Store every
// cfg.Interval, from a goroutine of its own, until stop is called; stop writes once more and
// returns when done. A failed write is logged (once a minute at most) and its figures are
// written with the next one. Call it once per Fleet.
func (f *Fleet) PublishStats(cfg StatsConfig) (stop func()) {
	cfg.Interval = cmpPos(cfg.Interval, DefaultStatsInterval)
	cfg.Process = cmp.Or(cfg.Process, ProcessName())
	p := &publisher{fleet: f, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(p.stop)
			<-p.done
		})
	}
}

type publisher struct {
	fleet  *Fleet
	cfg    StatsConfig
	stop   chan struct{}
	done   chan struct{}
	warned time.Time
}

func (p *publisher) run() {
	defer close(p.done)
	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			p.publish()
		case <-p.stop:
			p.publish()
			return
		}
	}
}

// publish writes every model's changed minutes in one PutModelStats.
func (p *publisher) publish() {
	now := time.Now()
	st := p.fleet.state.Load()
	type part struct {
		s    *stats
		figs []pipeline.ModelFigures
	}
	var parts []part
	var all []pipeline.ModelFigures
	for name, ep := range st.endpoints {
		figs := ep.health.stats.figures(name, CircuitName(ep.health.breaker.State()), now, false)
		parts = append(parts, part{ep.health.stats, figs})
		all = append(all, figs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), statsWriteWait)
	err := p.cfg.Store.PutModelStats(ctx, p.cfg.Process, all)
	cancel()
	for _, pt := range parts {
		pt.s.settled(pt.figs, err == nil, now)
	}
	if err != nil && time.Since(p.warned) >= time.Minute {
		p.warned = time.Now()
		p.cfg.Logger.Warn().Err(err).Str("process", p.cfg.Process).
			Msg("model figures not written; the fleet's view of this process lags until a write succeeds (logged once a minute)")
	}
}

// Figures returns this process's figures of every configured model that are still in memory
// (the minutes the store may not have yet, and now's), named process, without marking them
// written: to show this process's calls at once beside the store's (OverlayFigures).
func (f *Fleet) Figures(process string, now time.Time) []pipeline.ModelFigures {
	var out []pipeline.ModelFigures
	for name, ep := range f.state.Load().endpoints {
		for _, fig := range ep.health.stats.figures(name, CircuitName(ep.health.breaker.State()), now, true) {
			fig.Process = process
			out = append(out, fig)
		}
	}
	return out
}

// OverlayFigures returns stored with each of mine (one process's fresher figures, from
// Fleet.Figures) in place of the stored figures of the same model, minute and process.
func OverlayFigures(stored, mine []pipeline.ModelFigures) []pipeline.ModelFigures {
	type key struct {
		model, process string
		minute         int64
	}
	fresh := make(map[key]bool, len(mine))
	for _, f := range mine {
		fresh[key{f.Model, f.Process, f.Minute.Unix()}] = true
	}
	out := make([]pipeline.ModelFigures, 0, len(stored)+len(mine))
	for _, f := range stored {
		if !fresh[key{f.Model, f.Process, f.Minute.Unix()}] {
			out = append(out, f)
		}
	}
	return append(out, mine...)
}

// FleetStatsSince returns the start of the window FleetReports covers at now: the minute
// FleetWindow - 1 minute before now's.
func FleetStatsSince(now time.Time) time.Time {
	return now.UTC().Truncate(pipeline.ModelStatsStep).Add(pipeline.ModelStatsStep - FleetWindow)
}

// ProcessReport is one process's view of a model in a fleet report.
type ProcessReport struct {
	Process string `json:"process"`
	// Circuit is the process's breaker state of the model at SeenAt.
	Circuit string    `json:"circuit"`
	SeenAt  time.Time `json:"seen_at"`
	// Calls counts the process's attempts in the window.
	Calls int64 `json:"calls"`
}

// CircuitSummary counts the live processes by their breaker state of a model.
type CircuitSummary struct {
	Processes int `json:"processes"`
	Closed    int `json:"closed"`
	HalfOpen  int `json:"half_open"`
	Open      int `json:"open"`
}

// FleetReports returns base (the configured models' reports) with the figures of every
// process read from a pipeline.ModelStatsStore since FleetStatsSince(now): calls, p50/p95
// (from the summed histograms), error and throttle rates over the window; calls and tokens per
// minute (this minute's counts plus the part of the last minute's that the sliding 60 seconds
// still cover); and the circuit of every process whose last heartbeat is at most stale old,
// the report's Circuit being the worst of them (closed when none is live). Spend, budgets and
// limits stay as base has them. figures of models not in base are ignored.
func FleetReports(base []Report, figures []pipeline.ModelFigures, now time.Time, stale time.Duration) []Report {
	since := FleetStatsSince(now)
	cur := now.UTC().Truncate(pipeline.ModelStatsStep)
	prev := cur.Add(-pipeline.ModelStatsStep)
	left := 1 - float64(now.Sub(cur))/float64(pipeline.ModelStatsStep)
	type acc struct {
		calls, errors, throttles int64
		latency                  pipeline.ModelLatency
		curCalls, curTok         int64
		prevCalls, prevTok       int64
		procs                    map[string]*ProcessReport
	}
	by := map[string]*acc{}
	for _, f := range figures {
		if f.Minute.Before(since) {
			continue
		}
		a := by[f.Model]
		if a == nil {
			a = &acc{procs: map[string]*ProcessReport{}}
			by[f.Model] = a
		}
		a.calls += f.Calls
		a.errors += f.Errors
		a.throttles += f.Throttles
		a.latency.Merge(f.Latency)
		switch {
		case f.Minute.Equal(cur):
			a.curCalls += f.Calls
			a.curTok += f.InputTokens + f.OutputTokens
		case f.Minute.Equal(prev):
			a.prevCalls += f.Calls
			a.prevTok += f.InputTokens + f.OutputTokens
		}
		pr := a.procs[f.Process]
		if pr == nil {
			pr = &ProcessReport{Process: f.Process}
			a.procs[f.Process] = pr
		}
		pr.Calls += f.Calls
		if f.Seen.After(pr.SeenAt) {
			pr.SeenAt, pr.Circuit = f.Seen.UTC(), f.Circuit
		}
	}
	out := slices.Clone(base)
	for i := range out {
		r := &out[i]
		r.Scope = ScopeFleet
		r.Circuit = CircuitName(StateClosed)
		r.Calls, r.P50Ms, r.P95Ms, r.ErrorRate, r.ThrottleRate = 0, 0, 0, 0, 0
		r.CallsPerMinute, r.TokensPerMinute = 0, 0
		r.Circuits = &CircuitSummary{}
		r.Processes = nil
		a := by[r.Name]
		if a == nil {
			continue
		}
		r.Calls = int(a.calls)
		r.P50Ms, r.P95Ms = ms(a.latency.Percentile(0.50)), ms(a.latency.Percentile(0.95))
		if a.calls > 0 {
			r.ErrorRate = float64(a.errors) / float64(a.calls)
			r.ThrottleRate = float64(a.throttles) / float64(a.calls)
		}
		r.CallsPerMinute = a.curCalls + int64(float64(a.prevCalls)*left+0.5)
		r.TokensPerMinute = a.curTok + int64(float64(a.prevTok)*left+0.5)
		worst := StateClosed
		for _, pr := range a.procs {
			if now.Sub(pr.SeenAt) > stale {
				continue
			}
			r.Processes = append(r.Processes, *pr)
			r.Circuits.Processes++
			switch pr.Circuit {
			case CircuitName(StateOpen):
				r.Circuits.Open++
				worst = StateOpen
			case CircuitName(StateHalfOpen):
				r.Circuits.HalfOpen++
				if worst != StateOpen {
					worst = StateHalfOpen
				}
			default:
				r.Circuits.Closed++
			}
		}
		r.Circuit = CircuitName(worst)
		slices.SortFunc(r.Processes, func(x, y ProcessReport) int { return strings.Compare(x.Process, y.Process) })
	}
	return out
}
