package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.LimitStore = (*Store)(nil)

// refilled is a bucket's level after refilling: $2 rate per nanosecond, $3 burst, $5 now in
// nanoseconds; a clock behind the last update refills nothing.
const refilled = "least($3::float8, rate_buckets.tokens + greatest(0, $5::bigint - rate_buckets.updated_ns) * $2::float8)"

// takeSQL takes $4 tokens from bucket $1 when it holds them, in one atomic statement.
const takeSQL = `INSERT INTO rate_buckets (key, tokens, updated_ns, last_ok) VALUES ($1, $3::float8 - $4::float8, $5::bigint, true)
ON CONFLICT (key) DO UPDATE SET
	tokens = CASE WHEN ` + refilled + ` >= $4::float8 THEN ` + refilled + ` - $4::float8 ELSE ` + refilled + ` END,
	last_ok = ` + refilled + ` >= $4::float8,
	updated_ns = greatest(rate_buckets.updated_ns, $5::bigint)
RETURNING tokens, last_ok`

// quotaSQL adds $2 to counter $1 when it stays within $3 (a negative $2 always counts), in one
// atomic statement.
const quotaSQL = `INSERT INTO quota_usage (key, used, last_ok) VALUES ($1, greatest(0, $2::bigint), true)
ON CONFLICT (key) DO UPDATE SET
	used = CASE WHEN $2::bigint < 0 OR quota_usage.used + $2::bigint <= $3::bigint
		THEN greatest(0, quota_usage.used + $2::bigint) ELSE quota_usage.used END,
	last_ok = ($2::bigint < 0 OR quota_usage.used + $2::bigint <= $3::bigint)
RETURNING used, last_ok`

// Take implements pipeline.LimitStore: the bucket is one row, shared by every process using the
// database, so a fleet's ingresses enforce one rate between them.
func (s *Store) Take(ctx context.Context, key string, rate float64, burst, cost int, now time.Time) (pipeline.RateDecision, error) {
	if cost > burst {
		return pipeline.RateDecision{RetryAfter: time.Hour}, nil
	}
	var tokens float64
	var ok bool
	err := s.pool.QueryRow(ctx, takeSQL, key, rate/float64(time.Second), burst, cost, now.UnixNano()).Scan(&tokens, &ok)
	if err != nil {
		return pipeline.RateDecision{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("take from rate bucket "+key, err))
	}
	d := pipeline.RateDecision{Allowed: ok, Remaining: int(math.Floor(tokens))}
	if !ok {
		d.RetryAfter = pipeline.RefillWait(tokens, rate, cost)
	}
	return d, nil
}

// UseQuota implements pipeline.LimitStore; usage is durable and shared by the fleet.
func (s *Store) UseQuota(ctx context.Context, key string, limit, cost int64) (pipeline.QuotaDecision, error) {
	if cost > limit {
		return pipeline.QuotaDecision{}, nil
	}
	var d pipeline.QuotaDecision
	if err := s.pool.QueryRow(ctx, quotaSQL, key, cost, limit).Scan(&d.Used, &d.Allowed); err != nil {
		return pipeline.QuotaDecision{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("use quota "+key, err))
	}
	return d, nil
}
