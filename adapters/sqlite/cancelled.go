package sqlite

import (
	"context"
	"fmt"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.CancelLog = (*Store)(nil)

// maxCancelledPage bounds the ids one CancelledSince call returns.
const maxCancelledPage = 10000

// CancelledSince implements pipeline.CancelLog from the cancelled_jobs table, which a trigger
// on jobs fills (any process writing the file, an ingress's cancels included) and empties as
// the records go. It reads on the read pool, so it sees what was committed before it began.
func (s *Store) CancelledSince(ctx context.Context, after int64) ([]string, int64, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT seq, job_id FROM cancelled_jobs WHERE seq > ? ORDER BY seq LIMIT ?", after, maxCancelledPage)
	if err != nil {
		return nil, after, fmt.Errorf("sqlite store: read cancelled jobs: %w", err)
	}
	defer rows.Close()
	var ids []string
	next := after
	for rows.Next() {
		var id string
		if err := rows.Scan(&next, &id); err != nil {
			return nil, after, fmt.Errorf("sqlite store: read cancelled jobs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("sqlite store: read cancelled jobs: %w", err)
	}
	return ids, next, nil
}
