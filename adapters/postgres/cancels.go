package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/messages"
)

const cancelledAmongSQL = "SELECT job_id FROM jobs WHERE job_id = ANY($1) AND status = $2"

// CancelledAmong returns those of ids whose status is CANCELLED; see pipeline.CancelFinder. It
// is one primary-key query however many ids there are, and sees every write that has returned,
// from any process.
func (s *Store) CancelledAmong(ctx context.Context, ids []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, cancelledAmongSQL, ids, string(messages.StatusCancelled))
	if err != nil {
		return nil, s.wrap("read cancelled jobs", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.wrap("read cancelled jobs", err)
	}
	return out, nil
}
