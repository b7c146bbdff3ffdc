package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// expireSQL deletes up to $2 finished jobs last updated before $1, oldest first. The inner
// SELECT walks the jobs_finished index (migration 0004) and locks the rows it picks, skipping
// rows another transaction holds: a Transition about to take the job out of its terminal status,
// or another process's reaper. The outer DELETE finds the locked rows by ctid, which cannot
// change while they are locked.
const expireSQL = `DELETE FROM jobs WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM jobs WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at < $1
	ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED))
RETURNING job_id`

var _ pipeline.Expirer = (*Store)(nil)

// DeleteFinishedBefore deletes up to limit jobs whose status is COMPLETED, FAILED or CANCELLED
// and whose last update is before before, oldest first, with their idempotency keys, and
// returns their ids; see pipeline.Expirer. It is one statement (one transaction): any number
// of processes may run it at once, each skipping the rows the others have locked
// (FOR UPDATE SKIP LOCKED), so they neither wait for each other nor delete a job twice. A
// Transition racing it either commits first (and the job, no longer terminal, stays) or finds
// the job gone.
func (s *Store) DeleteFinishedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, errors.New("postgres store: delete finished jobs with a limit below 1 (pass the batch size)")
	}
	rows, err := s.pool.Query(ctx, expireSQL, storecodec.Millis(before), limit)
	if err != nil {
		return nil, s.wrap("delete finished jobs", err)
	}
	defer rows.Close()
	ids := make([]string, 0, limit)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap("delete finished jobs", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("delete finished jobs", err)
	}
	return ids, nil
}
