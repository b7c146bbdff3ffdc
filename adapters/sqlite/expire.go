package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// expireSQL deletes up to ?2 finished jobs last updated before ?1 (Unix ms), oldest first,
// walking the jobs_finished index (migration 0004) from its start. INDEXED BY pins it: left to
// itself the planner prefers the status equality of jobs_status_created and sorts every finished
// job to find the oldest. SQLite accepts the partial index only because the status list reads
// exactly as its WHERE; a statement that could not use it fails to prepare.
const expireSQL = "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs INDEXED BY jobs_finished " +
	"WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at < ?1 ORDER BY updated_at LIMIT ?2) RETURNING job_id"

var _ pipeline.Expirer = (*Store)(nil)

// DeleteFinishedBefore deletes up to limit jobs whose status is COMPLETED, FAILED or CANCELLED
// and whose last update is before before (millisecond precision), oldest first, with their
// idempotency keys, and returns their ids; see pipeline.Expirer. The delete is one request to
// the writer: it shares a group-commit transaction with the job writes waiting beside it and
// holds the writer for as long as deleting limit rows takes (about a millisecond per 100 rows),
// so keep limit to a few hundred. Each call runs alone on the writer, so concurrent calls never
// return the same job.
func (s *Store) DeleteFinishedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, errors.New("sqlite store: delete finished jobs with a limit below 1 (pass the batch size)")
	}
	r := &request{ctx: ctx, op: opExpire, before: before.UnixMilli(), limit: limit}
	if err := s.submit(r); err != nil {
		return nil, err
	}
	return r.ids, nil
}

// expire runs expireSQL on the writer's transaction. On error it returns no ids: the caller
// rolls the statement back.
func (s *Store) expire(ctx context.Context, before int64, limit int) ([]string, error) {
	rows, err := s.w.expire.QueryContext(ctx, before, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: delete finished jobs: %w", err)
	}
	defer rows.Close()
	ids := make([]string, 0, limit)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite store: delete finished jobs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: delete finished jobs: %w", err)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlite store: delete finished jobs: %w", err)
	}
	return ids, nil
}
