package models

import (
	"errors"
	"sync"
	"time"
)

// Breaker states, as infleet_model_circuit_state reports them.
const (
	StateClosed   = 0
	StateHalfOpen = 1
	StateOpen     = 2
)

// Breaker defaults.
const (
	DefaultBreakerFailures   = 5
	DefaultBreakerRatio      = 0.5
	DefaultBreakerMinCalls   = 20
	DefaultBreakerWindow     = 10 * time.Second
	DefaultBreakerOpenFor    = 5 * time.Second
	DefaultBreakerHalfOpenOK = 1
)

// ErrCircuitOpen is returned, wrapped, when a model's circuit is open: calls are refused
// without reaching the model until a half-open probe succeeds. The fallback chain moves on.
var ErrCircuitOpen = errors.New("circuit open: the model failed repeatedly; calls go to its fallbacks until a probe succeeds")

// BreakerConfig shapes a circuit breaker. The zero value uses the defaults.
type BreakerConfig struct {
	// Failures is the run of consecutive failures that opens the circuit. Default 5.
	Failures int
	// Ratio opens the circuit when at least MinCalls calls ended in the current Window and
	// this share of them failed. Default 0.5.
	Ratio float64
	// MinCalls is the number of calls in a window before Ratio applies. Default 20.
	MinCalls int
	// Window is the period over which Ratio is counted; counts restart every Window. Default 10s.
	Window time.Duration
	// OpenFor is how long the circuit stays open before one half-open probe is let through.
	// Default 5s.
	OpenFor time.Duration
	// Disabled turns the breaker off: every call is allowed.
	Disabled bool
}

// Breaker is a circuit breaker for one model endpoint, shared by every job of the process. It
// is safe for concurrent use. The Fleet reports only failures that say the endpoint is unwell
// (5xx, timeouts, hangs, not ready); throttling and a caller's invalid request do not count.
type Breaker struct {
	cfg      BreakerConfig
	now      func() time.Time
	onChange func(state int)

	mu          sync.Mutex
	state       int
	consecutive int
	calls, bad  int
	windowStart time.Time
	openedAt    time.Time
	probing     bool
}

// NewBreaker returns a closed breaker. onChange, when not nil, is called with the new state
// under the breaker's lock on every change (keep it cheap: set a gauge).
func NewBreaker(cfg BreakerConfig, onChange func(state int)) *Breaker {
	cfg.Failures = cmpPos(cfg.Failures, DefaultBreakerFailures)
	if cfg.Ratio <= 0 || cfg.Ratio > 1 {
		cfg.Ratio = DefaultBreakerRatio
	}
	cfg.MinCalls = cmpPos(cfg.MinCalls, DefaultBreakerMinCalls)
	cfg.Window = cmpPos(cfg.Window, DefaultBreakerWindow)
	cfg.OpenFor = cmpPos(cfg.OpenFor, DefaultBreakerOpenFor)
	b := &Breaker{cfg: cfg, now: time.Now, onChange: onChange}
	b.windowStart = b.now()
	return b
}

// State returns StateClosed, StateHalfOpen or StateOpen.
func (b *Breaker) State() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	return b.state
}

// Allow asks to make one call. When it returns nil the caller must report the call's end with
// Done exactly once; when it returns ErrCircuitOpen the call must not be made.
func (b *Breaker) Allow() error {
	if b.cfg.Disabled {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	switch b.state {
	case StateOpen:
		return ErrCircuitOpen
	case StateHalfOpen:
		if b.probing {
			return ErrCircuitOpen
		}
		b.probing = true
	}
	return nil
}

// Done reports the end of an allowed call: ok false when the endpoint failed. A call that
// ended for a reason that says nothing about the endpoint (the caller gave up, the request
// was invalid) should be reported ok.
func (b *Breaker) Done(ok bool) {
	if b.cfg.Disabled {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tick()
	if b.state == StateHalfOpen {
		b.probing = false
		if ok {
			b.set(StateClosed)
		} else {
			b.trip()
		}
		return
	}
	if b.state == StateOpen {
		return
	}
	b.calls++
	if ok {
		b.consecutive = 0
		return
	}
	b.bad++
	b.consecutive++
	if b.consecutive >= b.cfg.Failures ||
		(b.calls >= b.cfg.MinCalls && float64(b.bad) >= b.cfg.Ratio*float64(b.calls)) {
		b.trip()
	}
}

// tick moves an open circuit to half-open once OpenFor has passed and restarts the ratio
// window. Called with mu held.
func (b *Breaker) tick() {
	now := b.now()
	if b.state == StateOpen && now.Sub(b.openedAt) >= b.cfg.OpenFor {
		b.set(StateHalfOpen)
		b.probing = false
	}
	if now.Sub(b.windowStart) >= b.cfg.Window {
		b.windowStart, b.calls, b.bad = now, 0, 0
	}
}

func (b *Breaker) trip() {
	b.openedAt = b.now()
	b.set(StateOpen)
}

func (b *Breaker) set(s int) {
	if s == StateClosed || s == StateOpen {
		b.consecutive, b.calls, b.bad = 0, 0, 0
		b.windowStart = b.now()
	}
	if s == b.state {
		return
	}
	b.state = s
	if b.onChange != nil {
		b.onChange(s)
	}
}

// cmpPos returns v when it is positive, else def.
func cmpPos[T int | int64 | float64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
