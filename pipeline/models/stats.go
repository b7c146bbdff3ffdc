package models

import (
	"slices"
	"sync"
	"time"
)

// statsWindow is how many recent calls the live figures of a model cover.
const statsWindow = 256

// Snapshot is a model's live figures, from this process's own calls.
type Snapshot struct {
	// Calls is how many calls the figures cover (at most 256, the most recent).
	Calls int
	// P50 and P95 are the median and 95th percentile latency of the recent calls.
	P50, P95 time.Duration
	// ErrorRate is the share of the recent calls that failed, throttled ones included.
	ErrorRate float64
	// ThrottleRate is the share of the recent calls the model throttled.
	ThrottleRate float64
	// CallsLastMinute and TokensLastMinute count the attempts, and the tokens of the answered
	// ones, of the last 60 seconds.
	CallsLastMinute, TokensLastMinute int64
	// SpendToday is the estimated spend in US dollars since 00:00 UTC.
	SpendToday float64
	// Circuit is the breaker state (StateClosed, StateHalfOpen, StateOpen).
	Circuit int
}

// stats keeps a ring of recent calls and the day's spend. Safe for concurrent use.
type stats struct {
	mu    sync.Mutex
	lat   [statsWindow]time.Duration
	ok    [statsWindow]bool
	thr   [statsWindow]bool
	last  lastMinute
	n     int
	next  int
	day   int // the UTC day spend counts for, as yyyymmdd
	spend float64
	now   func() time.Time
	// minutes are this process's figures by minute (Unix seconds) until the store has them
	// (fleetstats.go).
	minutes map[int64]*minuteFigures
}

func newStats() *stats { return &stats{now: time.Now, minutes: map[int64]*minuteFigures{}} }

// record adds one attempt: its latency, whether it was answered or throttled, its tokens and
// cost.
func (s *stats) record(d time.Duration, ok, throttled bool, in, out int, cost float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.lat[s.next], s.ok[s.next], s.thr[s.next] = d, ok, throttled
	s.last.add(now, int64(in+out))
	s.minute(now).add(d, ok, throttled, in, out)
	s.next = (s.next + 1) % statsWindow
	s.n = min(s.n+1, statsWindow)
	s.addSpend(now, cost)
}

// addSpend adds cost to the spend of now's UTC day, starting it afresh on a new day. Called
// with mu held.
func (s *stats) addSpend(now time.Time, cost float64) {
	y, m, d := now.UTC().Date()
	if day := y*10000 + int(m)*100 + d; day != s.day {
		s.day, s.spend = day, 0
	}
	s.spend += cost
}

func (s *stats) snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addSpend(s.now(), 0)
	out := Snapshot{Calls: s.n, SpendToday: s.spend}
	out.CallsLastMinute, out.TokensLastMinute = s.last.sum(s.now())
	if s.n == 0 {
		return out
	}
	lat := slices.Clone(s.lat[:s.n])
	slices.Sort(lat)
	out.P50 = lat[(len(lat)*50-1)/100]
	out.P95 = lat[(len(lat)*95-1)/100]
	bad, throttled := 0, 0
	for i, ok := range s.ok[:s.n] {
		if !ok {
			bad++
		}
		if s.thr[i] {
			throttled++
		}
	}
	out.ErrorRate = float64(bad) / float64(s.n)
	out.ThrottleRate = float64(throttled) / float64(s.n)
	return out
}

// lastMinute counts calls and tokens per second over the last 60 seconds. Not safe for
// concurrent use: stats guards it.
type lastMinute struct {
	sec    [60]int64 // the Unix second each slot counts
	calls  [60]int64
	tokens [60]int64
}

func (m *lastMinute) add(now time.Time, tokens int64) {
	sec := now.Unix()
	i := sec % 60
	if m.sec[i] != sec {
		m.sec[i], m.calls[i], m.tokens[i] = sec, 0, 0
	}
	m.calls[i]++
	m.tokens[i] += tokens
}

func (m *lastMinute) sum(now time.Time) (calls, tokens int64) {
	sec := now.Unix()
	for i := range m.sec {
		if sec-m.sec[i] < 60 && m.sec[i] <= sec {
			calls += m.calls[i]
			tokens += m.tokens[i]
		}
	}
	return calls, tokens
}
