package config

import (
	"cmp"
	"time"
)

// Defaults of the workers section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultConcurrency         = 64
	DefaultMaxAttempts         = 5
	DefaultWeightHigh          = 6
	DefaultWeightNormal        = 3
	DefaultWeightLow           = 1
	DefaultRetryBackoffInitial = time.Second
	DefaultRetryBackoffMax     = time.Minute
	DefaultShutdownTimeout     = 30 * time.Second
	DefaultJobTimeout          = 10 * time.Minute
	DefaultCancelPoll          = 250 * time.Millisecond
	DefaultClaimAfter          = 250 * time.Millisecond
)

// InFlight is how many messages a process runs at once, from their hand-out until their
// outcome is recorded: Concurrency plus Prefetch. The scheduler is sized by it; the transports
// by Config.Unacked, which adds the acknowledgements that wait for the archive.
func (w Workers) InFlight() int { return w.Concurrency + w.Prefetch }

// Workers configures job processing.
type Workers struct {
	// Concurrency is how many jobs one process runs at once: jobs between their claim and the
	// hand-over of their result to the result store (guardrails, the model, the result write).
	// Default 64.
	Concurrency int `yaml:"concurrency,omitempty"`
	// Prefetch is how many messages a process holds beyond Concurrency: being claimed (their
	// PROCESSING record being written) before a worker is free, or waiting, their result
	// stored, for their outcome to be recorded and the message acknowledged. A worker is
	// never kept from the next job by those writes. At archive.write before_ack a message
	// whose outcome is recorded waits for its archive write among archive.held_acks more
	// (Config.HeldAcks), not among these. Default: Concurrency.
	Prefetch int `yaml:"prefetch,omitempty"`
	// MaxAttempts before a job fails and is dead-lettered. Default 5.
	MaxAttempts int `yaml:"max_attempts,omitempty"`
	// PriorityWeights share the workers among the priority queues. Default 6/3/1.
	PriorityWeights PriorityWeights `yaml:"priority_weights,omitempty"`
	// Strict serves higher priorities first whenever they have work, instead of by weight; the
	// same as priority_weights.strict (either turns it on; Load sets both). Default false.
	Strict bool `yaml:"strict,omitempty"`
	// RetryBackoff is the delay between attempts, doubling from Initial up to Max.
	RetryBackoff RetryBackoff `yaml:"retry_backoff,omitempty"`
	// ShutdownTimeout bounds how long in-flight jobs may finish on shutdown before they are
	// cancelled and handed back. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout,omitempty"`
	// JobTimeout bounds one attempt of a job. Default 10m.
	JobTimeout time.Duration `yaml:"job_timeout,omitempty"`
	// CancelPoll is how often a worker process asks the job store, in one read for every job
	// it runs, which of them were cancelled, so that DELETE /v1/jobs/{id} on any process stops
	// the job where it runs. Nothing is read while no job runs. Default 250ms.
	CancelPoll time.Duration `yaml:"cancel_poll,omitempty"`
	// ClaimAfter is how long a job runs on its message's first delivery before its claim
	// (PROCESSING and the attempt) is recorded; a job done sooner is recorded once, COMPLETED
	// with its attempt counted. Only transports that count deliveries (embedded, SQS) tell a
	// first delivery; Kafka's jobs are claimed before they run. Default 250ms.
	ClaimAfter time.Duration `yaml:"claim_after,omitempty"`
	// ClaimBeforeRun records every job's claim before it runs, as before ClaimAfter existed:
	// PROCESSING shows from the first moment, at one more store write per job. Default false.
	ClaimBeforeRun bool `yaml:"claim_before_run,omitempty"`
}

// ClaimDelay is how long a job on its first delivery runs before its claim is recorded, as
// worker.Config.ClaimAfter takes it: zero when every claim is recorded before the job runs.
func (w Workers) ClaimDelay() time.Duration {
	if w.ClaimBeforeRun {
		return 0
	}
	return w.ClaimAfter
}

// PriorityWeights are relative shares of the workers per priority.
type PriorityWeights struct {
	// High weight. Default 6.
	High int `yaml:"high,omitempty"`
	// Normal weight. Default 3.
	Normal int `yaml:"normal,omitempty"`
	// Low weight. Default 1.
	Low int `yaml:"low,omitempty"`
	// Strict is workers.strict, spelled as the contract's "priority_weights: ... or strict: true".
	Strict bool `yaml:"strict,omitempty"`
}

// RetryBackoff is an exponential backoff between attempts.
type RetryBackoff struct {
	// Initial delay. Default 1s.
	Initial time.Duration `yaml:"initial,omitempty"`
	// Max delay. Default 1m.
	Max time.Duration `yaml:"max,omitempty"`
}

// applyDefaults fills the workers section's unset settings and makes strict and
// priority_weights.strict agree.
func (w *Workers) applyDefaults() {
	w.Concurrency = cmp.Or(w.Concurrency, DefaultConcurrency)
	w.Prefetch = cmp.Or(w.Prefetch, max(w.Concurrency, 0))
	w.MaxAttempts = cmp.Or(w.MaxAttempts, DefaultMaxAttempts)
	w.PriorityWeights.High = cmp.Or(w.PriorityWeights.High, DefaultWeightHigh)
	w.PriorityWeights.Normal = cmp.Or(w.PriorityWeights.Normal, DefaultWeightNormal)
	w.PriorityWeights.Low = cmp.Or(w.PriorityWeights.Low, DefaultWeightLow)
	w.Strict = w.Strict || w.PriorityWeights.Strict
	w.PriorityWeights.Strict = w.Strict
	w.RetryBackoff.Initial = cmp.Or(w.RetryBackoff.Initial, DefaultRetryBackoffInitial)
	w.RetryBackoff.Max = cmp.Or(w.RetryBackoff.Max, DefaultRetryBackoffMax)
	w.ShutdownTimeout = cmp.Or(w.ShutdownTimeout, DefaultShutdownTimeout)
	w.JobTimeout = cmp.Or(w.JobTimeout, DefaultJobTimeout)
	w.CancelPoll = cmp.Or(w.CancelPoll, DefaultCancelPoll)
	w.ClaimAfter = cmp.Or(w.ClaimAfter, DefaultClaimAfter)
}

// checkWorkers checks that the retry backoff starts no higher than its cap.
func (c *Config) checkWorkers(p *problems) {
	rb := c.Workers.RetryBackoff
	if rb.Initial > rb.Max {
		p.add("workers.retry_backoff.initial", "is %s, more than workers.retry_backoff.max (%s); lower it or raise max", rb.Initial, rb.Max)
	}
}
