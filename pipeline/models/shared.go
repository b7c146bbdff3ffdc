package models

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Shared-limit constants.
const (
	// leaseMargin is how long a concurrency lease outlives its call's timeout, so that only a
	// dead holder's leases expire.
	leaseMargin = 10 * time.Second
	// sharedPollMin and sharedPollMax bound the wait between two asks for a full slot.
	sharedPollMin = 2 * time.Millisecond
	sharedPollMax = 50 * time.Millisecond
)

// sharedLimiter enforces Limits for the whole fleet through a pipeline.LimitStore that every
// process shares: rpm and tpm are token buckets in the store, keyed by model, of the same
// shape as the in-process ones; max_concurrency is a count of leases (when the store is also a
// pipeline.LeaseStore) that expire a little after the call's timeout, so a killed process's
// slots come back. When the store has no leases, max_concurrency stays per process. When the
// store cannot be reached a call falls back to the per-process limiter rather than fail.
// Safe for concurrent use.
type sharedLimiter struct {
	store  pipeline.LimitStore
	leases pipeline.LeaseStore
	name   string
	limits Limits
	ttl    time.Duration
	holder string
	seq    *atomic.Uint64
	local  *limiter
	log    *zerolog.Logger
	warned *sync.Once
}

// callLimiter is what an endpoint waits on before each call: the in-process limiter or the
// shared one.
type callLimiter interface {
	acquire(ctx context.Context, estimate int) (release func(actual messages.Usage), err error)
}

// processID names this process's leases; unique enough across a fleet.
func processID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (f *Fleet) newCallLimiter(m ModelSpec) callLimiter {
	local := newLimiter(m.Limits)
	if f.shared == nil || m.Limits == (Limits{}) {
		return local
	}
	s := &sharedLimiter{
		store: f.shared, name: m.Name, limits: m.Limits,
		ttl:    cmpPos(m.Timeout, DefaultModelTimeout) + leaseMargin,
		holder: f.holder, seq: &f.leaseSeq, local: local, log: &f.log, warned: &f.sharedWarned,
	}
	s.leases, _ = f.shared.(pipeline.LeaseStore)
	return s
}

func (s *sharedLimiter) key(kind string) string { return "model:" + s.name + ":" + kind }

// acquire waits for the model's share of the fleet's rpm and tpm, then a fleet-wide
// concurrency slot, within ctx.
func (s *sharedLimiter) acquire(ctx context.Context, estimate int) (func(messages.Usage), error) {
	if s.limits.RPM > 0 {
		if err := s.take(ctx, "rpm", s.limits.RPM, 1); err != nil {
			return s.fallBack(ctx, estimate, err)
		}
	}
	tpmCost := 0
	if s.limits.TPM > 0 {
		tpmCost = min(max(estimate, 1), bucketBurst(s.limits.TPM))
		if err := s.take(ctx, "tpm", s.limits.TPM, tpmCost); err != nil {
			return s.fallBack(ctx, estimate, err)
		}
	}
	var lease string
	var releaseLocal func(messages.Usage)
	switch {
	case s.limits.MaxConcurrency > 0 && s.leases != nil:
		lease = s.holder + "-" + strconv.FormatUint(s.seq.Add(1), 36)
		if err := s.lease(ctx, lease); err != nil {
			return s.fallBack(ctx, estimate, err)
		}
	case s.limits.MaxConcurrency > 0:
		if err := s.local.sem.acquire(ctx); err != nil {
			return nil, limitErr("max_concurrency", err)
		}
		releaseLocal = func(messages.Usage) { s.local.sem.release() }
	}
	return func(actual messages.Usage) {
		bg := context.WithoutCancel(ctx)
		if lease != "" {
			if err := s.leases.Release(bg, s.key("concurrency"), lease); err != nil {
				s.log.Warn().Err(err).Str("model", s.name).Msg("could not release a fleet-wide concurrency slot; it comes back when its lease expires")
			}
		}
		if releaseLocal != nil {
			releaseLocal(actual)
		}
		if s.limits.TPM > 0 {
			if extra := actual.InputTokens + actual.OutputTokens - tpmCost; extra > 0 {
				// Charge the shortfall without waiting (as far as the bucket holds it): the
				// next callers wait for it.
				_, _ = s.store.Take(bg, s.key("tpm"), perSecond(s.limits.TPM), bucketBurst(s.limits.TPM), min(extra, bucketBurst(s.limits.TPM)), time.Now())
			}
		}
	}, nil
}

// take waits until the fleet's bucket of kind gives cost tokens.
func (s *sharedLimiter) take(ctx context.Context, kind string, perMinute, cost int) error {
	for {
		d, err := s.store.Take(ctx, s.key(kind), perSecond(perMinute), bucketBurst(perMinute), cost, time.Now())
		if err != nil {
			if ctx.Err() != nil {
				return limitErr(kind, ctx.Err())
			}
			return err
		}
		if d.Allowed {
			return nil
		}
		if err := sleepCtx(ctx, jitter(max(d.RetryAfter, sharedPollMin))); err != nil {
			return limitErr(kind, err)
		}
	}
}

// lease waits for a fleet-wide concurrency slot.
func (s *sharedLimiter) lease(ctx context.Context, id string) error {
	poll := sharedPollMin
	for {
		now := time.Now()
		ok, err := s.leases.Lease(ctx, s.key("concurrency"), id, s.limits.MaxConcurrency, now.Add(s.ttl), now)
		if err != nil {
			if ctx.Err() != nil {
				return limitErr("max_concurrency", ctx.Err())
			}
			return err
		}
		if ok {
			return nil
		}
		if err := sleepCtx(ctx, jitter(poll)); err != nil {
			return limitErr("max_concurrency", err)
		}
		poll = min(2*poll, sharedPollMax)
	}
}

// fallBack answers a failed shared acquire: a limit error stands; a store that cannot be
// reached hands the call to the per-process limiter, with one warning.
func (s *sharedLimiter) fallBack(ctx context.Context, estimate int, err error) (func(messages.Usage), error) {
	if kindOf(err) == pipeline.ModelThrottled {
		return nil, err
	}
	s.warned.Do(func() {
		s.log.Warn().Err(err).Str("model", s.name).Msg("the limit store cannot be reached; model limits hold per process until it can")
	})
	return s.local.acquire(ctx, estimate)
}

// perSecond is a per-minute limit's refill rate.
func perSecond(perMinute int) float64 { return float64(perMinute) / 60 }

// bucketBurst is a per-minute limit's burst: one second's share, at least 1.
func bucketBurst(perMinute int) int { return max(perMinute/60, 1) }

// jitter spreads d over [d/2, d] so that waiters across a fleet do not ask at once.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
