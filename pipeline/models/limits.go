package models

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Limits bound the load put on one model: by this process, or by the whole fleet when the
// Fleet shares them through a store (FleetConfig.Shared). The zero value sets no limit.
type Limits struct {
	// MaxConcurrency bounds calls in flight. Default 0: no bound.
	MaxConcurrency int `json:"max_concurrency"`
	// RPM bounds requests per minute (a token bucket with a burst of one second's share,
	// at least 1). Default 0: no bound.
	RPM int `json:"rpm"`
	// TPM bounds tokens per minute: each call takes its estimated tokens before it is made
	// and the shortfall of its actual usage after. Default 0: no bound.
	TPM int `json:"tpm"`
}

// limiter enforces Limits. Safe for concurrent use.
type limiter struct {
	sem *semaphore
	rpm *rate.Limiter
	tpm *rate.Limiter
}

func newLimiter(l Limits) *limiter {
	lim := &limiter{}
	if l.MaxConcurrency > 0 {
		lim.sem = newSemaphore(l.MaxConcurrency)
	}
	if l.RPM > 0 {
		lim.rpm = rate.NewLimiter(rate.Limit(float64(l.RPM)/60), max(l.RPM/60, 1))
	}
	if l.TPM > 0 {
		lim.tpm = rate.NewLimiter(rate.Limit(float64(l.TPM)/60), max(l.TPM/60, 1))
	}
	return lim
}

// acquire waits for a concurrency slot and the request's share of the rate limits, within
// ctx. release must be called once after the call with the call's actual usage.
func (l *limiter) acquire(ctx context.Context, estimate int) (release func(actual messages.Usage), err error) {
	if l.sem == nil && l.rpm == nil && l.tpm == nil {
		return releaseNothing, nil // no limit: nothing to hold, nor two closures to make per call
	}
	if l.sem != nil {
		if err := l.sem.acquire(ctx); err != nil {
			return nil, limitErr("max_concurrency", err)
		}
	}
	undo := func() {
		if l.sem != nil {
			l.sem.release()
		}
	}
	if l.rpm != nil {
		if err := l.rpm.Wait(ctx); err != nil {
			undo()
			return nil, limitErr("rpm", err)
		}
	}
	if l.tpm != nil {
		n := min(max(estimate, 1), l.tpm.Burst())
		if err := l.tpm.WaitN(ctx, n); err != nil {
			undo()
			return nil, limitErr("tpm", err)
		}
	}
	return func(actual messages.Usage) {
		undo()
		if l.tpm != nil {
			if extra := actual.InputTokens + actual.OutputTokens - estimate; extra > 0 {
				// Charge the shortfall without waiting: the next callers wait for it.
				l.tpm.ReserveN(time.Now(), min(extra, l.tpm.Burst()))
			}
		}
	}, nil
}

// releaseNothing is the release of a limiter without limits.
func releaseNothing(messages.Usage) {}

// limitErr reports that a call could not get under a limit (of the process or of the fleet)
// before its deadline: the model is saturated, which is treated like throttling: the job
// waits in the queue for the model (or, with Policy.ThrottleFallback, moves to the fallback).
func limitErr(which string, err error) error {
	return &pipeline.ModelError{Kind: pipeline.ModelThrottled,
		Err: fmt.Errorf("%s limit reached before the deadline (the job waits and is retried; raise the model's %s to let more through): %w", which, which, err)}
}

// semaphore is a counting semaphore whose acquire honours a context.
type semaphore struct{ ch chan struct{} }

func newSemaphore(n int) *semaphore { return &semaphore{ch: make(chan struct{}, n)} }

func (s *semaphore) acquire(ctx context.Context) error {
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *semaphore) release() { <-s.ch }

// estimateTokens guesses a request's tokens before the call: 4 tokens per 3 words of input
// (as sim and fmsim count) plus max_tokens, or 256 when max_tokens is unset.
func estimateTokens(req pipeline.ModelRequest) int {
	words := countWords(req.System)
	for _, m := range req.Messages {
		words += countWords(m.Content)
	}
	out := req.Params.MaxTokens
	if out <= 0 {
		out = 256
	}
	return (words*4+2)/3 + out
}

func countWords(s string) int {
	n, in := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		space := c == ' ' || c == '\n' || c == '\t' || c == '\r'
		if !space && !in {
			n++
		}
		in = !space
	}
	return n
}
