package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/infleet/infleet/messages"
)

// cancelBatch is how many ids one CancelledAmong query asks about, well below SQLite's limit
// of bound parameters.
const cancelBatch = 500

// CancelledAmong returns those of ids whose status is CANCELLED; see pipeline.CancelFinder. It
// reads from the read pool, one primary-key query per 500 ids, and sees every write that has
// returned, from any process on the file.
func (s *Store) CancelledAmong(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	for len(ids) > 0 {
		n := min(len(ids), cancelBatch)
		args := make([]any, 0, n+1)
		args = append(args, string(messages.StatusCancelled))
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		q := "SELECT job_id FROM jobs WHERE status = ? AND job_id IN (?" + strings.Repeat(",?", n-1) + ")"
		rows, err := s.rdb.QueryContext(ctx, q, args...)
		if err != nil {
			return out, fmt.Errorf("sqlite store: read cancelled jobs: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return out, fmt.Errorf("sqlite store: read cancelled jobs: %w", err)
			}
			out = append(out, id)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return out, fmt.Errorf("sqlite store: read cancelled jobs: %w", err)
		}
		ids = ids[n:]
	}
	return out, nil
}
