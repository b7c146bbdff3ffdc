package config

import "time"

// Resilience shapes every model call: retries with exponential backoff and full jitter, a
// retry budget, a circuit breaker per model, the response cache and the degradation message.
// Zero values take the defaults of package pipeline/models.
type Resilience struct {
	// MaxAttempts per model, the first included. Default 4.
	MaxAttempts int `yaml:"max_attempts,omitempty"`
	// Backoff between attempts (full jitter): doubling from Initial (default 100ms) up to Max
	// (default 5s).
	Backoff RetryBackoff `yaml:"backoff,omitempty"`
	// Deadline bounds all attempts on one model, waits included. Default 60s.
	Deadline time.Duration `yaml:"deadline,omitempty"`
	// MaxRetryAfter is the longest Retry-After waited for within a call; a longer one ends the
	// call (the job waits in the queue, or with ThrottleFallback moves to the fallback).
	// Default 30s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after,omitempty"`
	// ThrottleFallback moves a call to the model's fallback when the model keeps throttling it.
	// Default false: a throttled model is paced down, throttled retries spend no retry budget,
	// and a job still throttled waits in the queue for the same model.
	ThrottleFallback bool `yaml:"throttle_fallback,omitempty"`
	// LimitsScope is where models[].max_concurrency, rpm and tpm hold, and where a throttled
	// model's pace is kept: LimitsScopeFleet (every process sharing the job store shares them)
	// or LimitsScopeProcess. Default "" (fleet).
	LimitsScope string `yaml:"limits_scope,omitempty"`
	// RetryBudget keeps retries a bounded share of calls per model.
	RetryBudget RetryBudget `yaml:"retry_budget,omitempty"`
	// Breaker is the circuit breaker of each model.
	Breaker Breaker `yaml:"breaker,omitempty"`
	// Cache is the exact-match response cache. Default off.
	Cache Cache `yaml:"cache,omitempty"`
	// DegradedMessage is the answer of a job no model could answer (the result says degraded).
	// Default "" (the job fails or retries instead).
	DegradedMessage string `yaml:"degraded_message,omitempty"`
}

// Scopes of resilience.limits_scope.
const (
	LimitsScopeFleet   = "fleet"
	LimitsScopeProcess = "process"
)

// RetryBudget is a token bucket of retries per model.
type RetryBudget struct {
	// Ratio of calls that may be retried. Default 0.2.
	Ratio float64 `yaml:"ratio,omitempty"`
	// Reserve is the retries allowed beyond the ratio. Default 10.
	Reserve int `yaml:"reserve,omitempty"`
}

// Breaker is a circuit breaker: it opens after Failures consecutive failures, or when Ratio
// of at least MinCalls calls in a Window failed; after OpenFor one probe decides.
type Breaker struct {
	// Failures in a row that open the circuit. Default 5.
	Failures int `yaml:"failures,omitempty"`
	// Ratio of failed calls in a window that opens the circuit. Default 0.5.
	Ratio float64 `yaml:"ratio,omitempty"`
	// MinCalls in a window before Ratio applies. Default 20.
	MinCalls int `yaml:"min_calls,omitempty"`
	// Window over which Ratio is counted. Default 10s.
	Window time.Duration `yaml:"window,omitempty"`
	// OpenFor is how long the circuit stays open before a probe. Default 5s.
	OpenFor time.Duration `yaml:"open_for,omitempty"`
}

// Cache is the exact-match response cache (model, prompt and parameters).
type Cache struct {
	// TTL of an entry; 0 turns the cache off. Default 0.
	TTL time.Duration `yaml:"ttl,omitempty"`
	// MaxEntries bounds the cache. Default 10000.
	MaxEntries int `yaml:"max_entries,omitempty"`
}
