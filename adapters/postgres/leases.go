package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.LeaseStore = (*Store)(nil)

// leaseSQL takes or renews lease $2 on key $1 until $3 when fewer than $5 other leases on the
// key are unexpired at $4. It runs under a transaction-scoped advisory lock on the key, so that
// the count and the insert of concurrent callers do not interleave.
const leaseSQL = `INSERT INTO model_leases (key, holder, expires_ns)
SELECT $1, $2, $3::bigint
WHERE (SELECT count(*) FROM model_leases WHERE key = $1 AND holder <> $2 AND expires_ns > $4::bigint) < $5::int
ON CONFLICT (key, holder) DO UPDATE SET expires_ns = excluded.expires_ns`

// Lease implements pipeline.LeaseStore: one transaction holding an advisory lock on the key
// (other keys do not wait); a refused lease also clears the key's expired rows.
func (s *Store) Lease(ctx context.Context, key, holder string, limit int, expires, now time.Time) (bool, error) {
	var ok bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('infleet.lease.' || $1))", key); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, leaseSQL, key, holder, expires.UnixNano(), now.UnixNano(), limit)
		if err != nil {
			return err
		}
		ok = tag.RowsAffected() == 1
		if !ok {
			_, err = tx.Exec(ctx, "DELETE FROM model_leases WHERE key = $1 AND expires_ns <= $2::bigint", key, now.UnixNano())
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("lease "+key, err))
	}
	return ok, nil
}

// Release implements pipeline.LeaseStore.
func (s *Store) Release(ctx context.Context, key, holder string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM model_leases WHERE key = $1 AND holder = $2", key, holder); err != nil {
		return fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("release lease "+key, err))
	}
	return nil
}
