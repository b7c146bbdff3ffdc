package fmsim

import (
	"sync"
	"time"
)

// DefaultRPMWindow is the sliding window Faults.RPM counts over when Faults.RPMWindow is 0.
const DefaultRPMWindow = time.Minute

// quota is one model's sliding-window request quota: it admits at most n requests in any
// window, as providers' requests-per-minute limits do; refused requests do not count.
type quota struct {
	mu    sync.Mutex
	times []time.Time // admitted requests within the window, oldest first
}

// admit counts one request at now when fewer than n were admitted within window; otherwise it
// returns how long until the oldest of them leaves the window, at least a millisecond.
func (q *quota) admit(now time.Time, n int, window time.Duration) (ok bool, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	cut := 0
	for cut < len(q.times) && now.Sub(q.times[cut]) >= window {
		cut++
	}
	q.times = q.times[cut:]
	if len(q.times) >= n {
		// Rounded up to the millisecond, as Retry-After-Ms carries it: a client that waits
		// what it is told finds the slot free.
		wait := q.times[len(q.times)-n].Add(window).Sub(now)
		return false, (wait + time.Millisecond - 1).Truncate(time.Millisecond)
	}
	q.times = append(q.times, now)
	return true, 0
}

// quotaFor returns the quota of model id, made on first use.
func (s *Server) quotaFor(id string) *quota {
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	q := s.quotas[id]
	if q == nil {
		q = &quota{}
		s.quotas[id] = q
	}
	return q
}

// traffic records what the model side saw of its callers' load: calls in flight and calls
// arriving per second.
type traffic struct {
	mu        sync.Mutex
	since     time.Time
	inFlight  int64
	maxFlight int64
	perSecond []int64
}

// enter counts a call arriving at now; the returned func counts it leaving.
func (t *traffic) enter(now time.Time) (leave func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight++
	t.maxFlight = max(t.maxFlight, t.inFlight)
	if sec := int(now.Sub(t.since) / time.Second); sec >= 0 {
		for len(t.perSecond) <= sec {
			t.perSecond = append(t.perSecond, 0)
		}
		t.perSecond[sec]++
	}
	return func() {
		t.mu.Lock()
		t.inFlight--
		t.mu.Unlock()
	}
}

// reset starts counting afresh at now; calls in flight stay counted as in flight.
func (t *traffic) reset(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.since, t.maxFlight, t.perSecond = now, t.inFlight, nil
}

// read returns the peak of calls in flight and the calls per second so far.
func (t *traffic) read() (maxFlight int64, perSecond []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.maxFlight, append([]int64(nil), t.perSecond...)
}
