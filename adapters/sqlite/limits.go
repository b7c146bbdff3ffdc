package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// Limits is a pipeline.LimitStore on a SQLite file: rate-limit buckets and quota counters that
// every process opening the same file shares, so two ingress processes (each with its own
// data_dir) pointed at one file enforce one limit between them, and quota usage survives
// restarts. Each call is one statement (an upsert with RETURNING), atomic across processes;
// processes wait up to Config.BusyTimeout for each other's write lock.
//
// It may share the file with a Store: the schema is the same, versioned migrations included.
// Limits is safe for concurrent use. Close it to release the file.
type Limits struct {
	db      *sql.DB
	take    *sql.Stmt
	quota   *sql.Stmt
	lease   *sql.Stmt
	release *sql.Stmt
	expire  *sql.Stmt
	usage   *sql.Stmt
	// pruned is when PutModelStats last deleted old figures, Unix ns.
	pruned atomic.Int64
}

var (
	_ pipeline.LimitStore = (*Limits)(nil)
	_ pipeline.LeaseStore = (*Limits)(nil)
)

// limitConns is how many connections a Limits holds; writers serialize on SQLite's lock, so a
// few suffice.
const limitConns = 2

// OpenLimits opens the limit tables of the SQLite file at cfg.Path, creating the file and
// bringing its schema up to date. The context bounds only the opening.
func OpenLimits(ctx context.Context, cfg Config) (*Limits, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite limits: create directory %s (check its permissions): %w", dir, err)
		}
	}
	db, err := sql.Open("sqlite", dsn(cfg, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite limits: open %s: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(limitConns)
	db.SetMaxIdleConns(limitConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	l := &Limits{db: db}
	if err := l.prepare(ctx, cfg.Path, cfg.BusyTimeout); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Limits) prepare(ctx context.Context, path string, busy time.Duration) error {
	conn, err := connWhenFree(ctx, l.db, busy)
	if err != nil {
		return fmt.Errorf("sqlite limits: open %s (check that the file is a SQLite database and is writable): %w", path, err)
	}
	_, err = migrate(ctx, conn)
	_ = conn.Close()
	if err != nil {
		return err
	}
	// ?1 key, ?2 rate per nanosecond, ?3 burst, ?4 cost, ?5 now (ns). The refilled level is
	// min(burst, tokens + elapsed*rate); a clock behind updated_ns refills nothing.
	const refilled = "min(?3, tokens + max(0, ?5 - updated_ns) * ?2)"
	if l.take, err = l.db.PrepareContext(ctx, `
INSERT INTO rate_buckets (key, tokens, updated_ns, last_ok) VALUES (?1, ?3 - ?4, ?5, 1)
ON CONFLICT (key) DO UPDATE SET
	tokens = CASE WHEN `+refilled+` >= ?4 THEN `+refilled+` - ?4 ELSE `+refilled+` END,
	last_ok = `+refilled+` >= ?4,
	updated_ns = max(updated_ns, ?5)
RETURNING tokens, last_ok`); err != nil {
		return fmt.Errorf("sqlite limits: prepare take: %w", err)
	}
	// ?1 key, ?2 cost, ?3 limit.
	if l.quota, err = l.db.PrepareContext(ctx, `
INSERT INTO quota_usage (key, used, last_ok) VALUES (?1, max(0, ?2), 1)
ON CONFLICT (key) DO UPDATE SET
	used = CASE WHEN ?2 < 0 OR used + ?2 <= ?3 THEN max(0, used + ?2) ELSE used END,
	last_ok = (?2 < 0 OR used + ?2 <= ?3)
RETURNING used, last_ok`); err != nil {
		return fmt.Errorf("sqlite limits: prepare quota: %w", err)
	}
	// ?1 key, ?2 holder, ?3 expires (ns), ?4 now (ns), ?5 limit. One statement: the count and
	// the insert see the same snapshot under SQLite's write lock. A holder renewing its own
	// lease is not counted against itself.
	if l.lease, err = l.db.PrepareContext(ctx, `
INSERT INTO model_leases (key, holder, expires_ns)
SELECT ?1, ?2, ?3
WHERE (SELECT count(*) FROM model_leases WHERE key = ?1 AND holder <> ?2 AND expires_ns > ?4) < ?5
ON CONFLICT (key, holder) DO UPDATE SET expires_ns = excluded.expires_ns
RETURNING 1`); err != nil {
		return fmt.Errorf("sqlite limits: prepare lease: %w", err)
	}
	// ?1 key, ?2 holder.
	if l.release, err = l.db.PrepareContext(ctx, `DELETE FROM model_leases WHERE key = ?1 AND holder = ?2`); err != nil {
		return fmt.Errorf("sqlite limits: prepare release: %w", err)
	}
	// ?1 key, ?2 now (ns).
	if l.expire, err = l.db.PrepareContext(ctx, `DELETE FROM model_leases WHERE key = ?1 AND expires_ns <= ?2`); err != nil {
		return fmt.Errorf("sqlite limits: prepare lease expiry: %w", err)
	}
	if l.usage, err = l.db.PrepareContext(ctx, addUsageSQL); err != nil {
		return fmt.Errorf("sqlite limits: prepare usage: %w", err)
	}
	return nil
}

// Take implements pipeline.LimitStore.
func (l *Limits) Take(ctx context.Context, key string, rate float64, burst, cost int, now time.Time) (pipeline.RateDecision, error) {
	if cost > burst {
		return pipeline.RateDecision{RetryAfter: time.Hour}, nil
	}
	var tokens float64
	var ok bool
	err := l.take.QueryRowContext(ctx, key, rate/float64(time.Second), burst, cost, now.UnixNano()).Scan(&tokens, &ok)
	if err != nil {
		return pipeline.RateDecision{}, fmt.Errorf("sqlite limits: take from %q: %w: %w", key, pipeline.ErrUnavailable, err)
	}
	d := pipeline.RateDecision{Allowed: ok, Remaining: int(math.Floor(tokens))}
	if !ok {
		d.RetryAfter = pipeline.RefillWait(tokens, rate, cost)
	}
	return d, nil
}

// UseQuota implements pipeline.LimitStore.
func (l *Limits) UseQuota(ctx context.Context, key string, limit, cost int64) (pipeline.QuotaDecision, error) {
	if cost > limit {
		return pipeline.QuotaDecision{}, nil
	}
	var d pipeline.QuotaDecision
	if err := l.quota.QueryRowContext(ctx, key, cost, limit).Scan(&d.Used, &d.Allowed); err != nil {
		return pipeline.QuotaDecision{}, fmt.Errorf("sqlite limits: use quota %q: %w: %w", key, pipeline.ErrUnavailable, err)
	}
	return d, nil
}

// Lease implements pipeline.LeaseStore: one statement, atomic across the processes sharing
// the file. A refused lease clears the key's expired rows (they never counted) before it
// answers.
func (l *Limits) Lease(ctx context.Context, key, holder string, limit int, expires, now time.Time) (bool, error) {
	var one int
	err := l.lease.QueryRowContext(ctx, key, holder, expires.UnixNano(), now.UnixNano(), limit).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := l.expire.ExecContext(ctx, key, now.UnixNano()); err != nil {
			return false, fmt.Errorf("sqlite limits: expire leases of %q: %w: %w", key, pipeline.ErrUnavailable, err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite limits: lease %q: %w: %w", key, pipeline.ErrUnavailable, err)
	}
	return true, nil
}

// Release implements pipeline.LeaseStore.
func (l *Limits) Release(ctx context.Context, key, holder string) error {
	if _, err := l.release.ExecContext(ctx, key, holder); err != nil {
		return fmt.Errorf("sqlite limits: release %q: %w: %w", key, pipeline.ErrUnavailable, err)
	}
	return nil
}

// Close releases the file. It is safe to call more than once.
func (l *Limits) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{l.take, l.quota, l.lease, l.release, l.expire, l.usage} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, l.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite limits: close: %w", err)
	}
	return nil
}
