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
	// P95 is the 95th percentile latency of the recent calls.
	P95 time.Duration
	// ErrorRate is the share of the recent calls that failed.
	ErrorRate float64
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
	n     int
	next  int
	day   string
	spend float64
	now   func() time.Time
}

func newStats() *stats { return &stats{now: time.Now} }

func (s *stats) record(d time.Duration, ok bool, cost float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat[s.next], s.ok[s.next] = d, ok
	s.next = (s.next + 1) % statsWindow
	s.n = min(s.n+1, statsWindow)
	s.addSpend(cost)
}

// addSpend adds cost to today's spend. Called with mu held.
func (s *stats) addSpend(cost float64) {
	day := s.now().UTC().Format(time.DateOnly)
	if day != s.day {
		s.day, s.spend = day, 0
	}
	s.spend += cost
}

func (s *stats) snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addSpend(0)
	out := Snapshot{Calls: s.n, SpendToday: s.spend}
	if s.n == 0 {
		return out
	}
	lat := slices.Clone(s.lat[:s.n])
	slices.Sort(lat)
	out.P95 = lat[(len(lat)*95-1)/100]
	bad := 0
	for _, ok := range s.ok[:s.n] {
		if !ok {
			bad++
		}
	}
	out.ErrorRate = float64(bad) / float64(s.n)
	return out
}

// tenantSpend keeps each tenant's estimated spend today (UTC). Safe for concurrent use.
type tenantSpend struct {
	mu    sync.Mutex
	day   string
	spend map[string]float64
	now   func() time.Time
}

func newTenantSpend() *tenantSpend { return &tenantSpend{spend: map[string]float64{}, now: time.Now} }

func (t *tenantSpend) add(tenant string, cost float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll()
	t.spend[tenant] += cost
}

func (t *tenantSpend) today(tenant string) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll()
	return t.spend[tenant]
}

// roll starts a new day's figures at midnight UTC. Called with mu held.
func (t *tenantSpend) roll() {
	if day := t.now().UTC().Format(time.DateOnly); day != t.day {
		t.day = day
		clear(t.spend)
	}
}

// TenantSpendToday returns the tenant's estimated spend since 00:00 UTC in this process.
func (f *Fleet) TenantSpendToday(tenant string) float64 { return f.tenants.today(tenant) }
