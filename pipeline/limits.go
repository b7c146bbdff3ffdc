package pipeline

import (
	"context"
	"fmt"
	"math"
	"time"
)

// RateDecision is the answer of LimitStore.Take.
type RateDecision struct {
	// Allowed is true when the tokens were taken.
	Allowed bool
	// Remaining is how many whole tokens the bucket holds after the call.
	Remaining int
	// RetryAfter, when not Allowed, is how long until the bucket holds enough tokens.
	RetryAfter time.Duration
}

// QuotaDecision is the answer of LimitStore.UseQuota.
type QuotaDecision struct {
	// Allowed is true when the usage was counted (it stays within the limit).
	Allowed bool
	// Used is the counter after the call.
	Used int64
}

// LimitStore keeps rate-limit buckets and quota counters where every ingress process of a
// fleet sees the same ones, so a limit holds for the fleet rather than per replica, and quota
// usage survives restarts. Implementations are safe for concurrent use, also by several
// processes sharing the store; each call is atomic.
type LimitStore interface {
	// Take takes cost tokens from the token bucket named key when it holds that many. The
	// bucket starts full (burst tokens) and refills at rate tokens per second up to burst;
	// now is the caller's clock (a clock running behind the store's last update refills
	// nothing). cost > burst is never allowed.
	Take(ctx context.Context, key string, rate float64, burst, cost int, now time.Time) (RateDecision, error)
	// UseQuota adds cost to the counter named key when the sum stays within limit, and says
	// whether it did. A negative cost gives usage back (a refund) and is always counted; the
	// counter never drops below zero. The key names the period too: a new period is a new key.
	UseQuota(ctx context.Context, key string, limit, cost int64) (QuotaDecision, error)
}

// Quota periods accepted by QuotaWindow.
const (
	QuotaPeriodDay   = "day"
	QuotaPeriodMonth = "month"
)

// QuotaWindow returns the name of the UTC calendar period (day or month) holding now, to
// suffix a quota key with, and when that period ends. Unknown periods are months.
func QuotaWindow(period string, now time.Time) (id string, end time.Time) {
	now = now.UTC()
	y, m, d := now.Date()
	if period == QuotaPeriodDay {
		return fmt.Sprintf("%04d-%02d-%02d", y, m, d), time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	}
	return fmt.Sprintf("%04d-%02d", y, m), time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
}

// RefillWait returns how long a bucket holding tokens needs at rate per second to hold cost
// tokens; zero when it already does. A non-positive rate never refills: it returns an hour.
func RefillWait(tokens float64, rate float64, cost int) time.Duration {
	missing := float64(cost) - tokens
	if missing <= 0 {
		return 0
	}
	if rate <= 0 {
		return time.Hour
	}
	return time.Duration(math.Ceil(missing / rate * float64(time.Second)))
}

// LeaseStore keeps counted leases where every process of a fleet sees the same ones, so that
// a bound on work in flight (a model's max_concurrency) holds for the fleet. A lease expires
// on its own, so the slots of a process that died come back without it. It is an optional
// ability of a LimitStore, found by type assertion. Implementations are safe for concurrent
// use, also by several processes sharing the store; each call is atomic.
type LeaseStore interface {
	// Lease takes a lease named holder on key, valid until expires, when fewer than limit
	// leases on key are unexpired at now; ok says whether it did. Taking a lease holder
	// already holds renews it (and is allowed). now is the caller's clock.
	Lease(ctx context.Context, key, holder string, limit int, expires, now time.Time) (ok bool, err error)
	// Release gives holder's lease on key back. Releasing a lease not held (expired, or
	// never taken) is no error.
	Release(ctx context.Context, key, holder string) error
}
