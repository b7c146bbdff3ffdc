package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.ReplayStore = (*Store)(nil)

// replayColumns are the columns of replays, in the order scanReplay reads them.
const replayColumns = "name, tenant, filters, matched, published, cursor, done, error, dry_run, started_us, updated_us, process, lease_us"

// startReplaySQL inserts a replay, or replaces a finished one of the same name, in one atomic
// statement; it returns a row only when it wrote.
const startReplaySQL = `INSERT INTO replays (` + replayColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (name) DO UPDATE SET (` + replayColumns + `) = (excluded.name, excluded.tenant, excluded.filters,
	excluded.matched, excluded.published, excluded.cursor, excluded.done, excluded.error, excluded.dry_run,
	excluded.started_us, excluded.updated_us, excluded.process, excluded.lease_us)
WHERE replays.done`

// StartReplay implements pipeline.ReplayStore: one upsert that replaces only a finished row;
// the current row is read back when it lost.
func (s *Store) StartReplay(ctx context.Context, r pipeline.Replay) (pipeline.Replay, bool, error) {
	tag, err := s.pool.Exec(ctx, startReplaySQL, r.Name, r.Tenant, r.Filters, r.Matched, r.Published, r.Cursor, r.Done,
		r.Error, r.DryRun, toMicros(r.StartedAt), toMicros(r.UpdatedAt), r.Process, toMicros(r.LeaseUntil))
	if err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("start replay "+r.Name, err))
	}
	if tag.RowsAffected() == 1 {
		r.StartedAt, r.UpdatedAt, r.LeaseUntil = fromMicros(toMicros(r.StartedAt)), fromMicros(toMicros(r.UpdatedAt)), fromMicros(toMicros(r.LeaseUntil))
		return r, true, nil
	}
	cur, err := s.GetReplay(ctx, r.Name)
	return cur, false, err
}

// SaveReplay implements pipeline.ReplayStore: one update conditioned on the holder.
func (s *Store) SaveReplay(ctx context.Context, r pipeline.Replay) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE replays SET matched = $3, published = $4, cursor = $5, done = $6, error = $7,
	updated_us = $8, lease_us = $9
WHERE name = $1 AND process = $2`,
		r.Name, r.Process, r.Matched, r.Published, r.Cursor, r.Done, r.Error, toMicros(r.UpdatedAt), toMicros(r.LeaseUntil))
	if err != nil {
		return false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("save replay "+r.Name, err))
	}
	return tag.RowsAffected() == 1, nil
}

// ClaimReplay implements pipeline.ReplayStore: one update conditioned on the expired lease,
// returning the claimed row; concurrent claims serialize on the row lock and re-check.
func (s *Store) ClaimReplay(ctx context.Context, name, process string, now, until time.Time) (pipeline.Replay, bool, error) {
	r, err := scanReplay(s.pool.QueryRow(ctx, `UPDATE replays SET process = $2, lease_us = $4, updated_us = $3
WHERE name = $1 AND NOT done AND lease_us < $3
RETURNING `+replayColumns, name, process, toMicros(now), toMicros(until)))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.GetReplay(ctx, name); err != nil {
			return pipeline.Replay{}, false, err
		}
		return pipeline.Replay{}, false, nil
	}
	if err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("claim replay "+name, err))
	}
	return r, true, nil
}

// GetReplay implements pipeline.ReplayStore: one primary-key read.
func (s *Store) GetReplay(ctx context.Context, name string) (pipeline.Replay, error) {
	r, err := scanReplay(s.pool.QueryRow(ctx, "SELECT "+replayColumns+" FROM replays WHERE name = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Replay{}, fmt.Errorf("replay %s: %w", name, pipeline.ErrNotFound)
	}
	if err != nil {
		return pipeline.Replay{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read replay "+name, err))
	}
	return r, nil
}

// Replays implements pipeline.ReplayStore: a read of the started_us index.
func (s *Store) Replays(ctx context.Context, tenant string, limit int) ([]pipeline.Replay, error) {
	limit = min(max(limit, 1), pipeline.ReplaysMaxList)
	rows, err := s.pool.Query(ctx, "SELECT "+replayColumns+` FROM replays WHERE $1 = '' OR tenant = $1
ORDER BY started_us DESC, name LIMIT $2`, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("list replays", err))
	}
	defer rows.Close()
	var out []pipeline.Replay
	for rows.Next() {
		r, err := scanReplay(rows)
		if err != nil {
			return nil, s.wrap("list replays", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("list replays", err))
	}
	return out, nil
}

// scanReplay reads one row of replayColumns.
func scanReplay(row pgx.Row) (pipeline.Replay, error) {
	var r pipeline.Replay
	var matched, published, started, updated, lease int64
	err := row.Scan(&r.Name, &r.Tenant, &r.Filters, &matched, &published, &r.Cursor, &r.Done, &r.Error, &r.DryRun,
		&started, &updated, &r.Process, &lease)
	r.Matched, r.Published = int(matched), int(published)
	r.StartedAt, r.UpdatedAt, r.LeaseUntil = fromMicros(started), fromMicros(updated), fromMicros(lease)
	return r, err
}

// ForgetReplays implements pipeline.ReplayStore: one delete.
func (s *Store) ForgetReplays(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM replays WHERE updated_us < $1 AND lease_us < $1`, toMicros(before))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("forget replays", err))
	}
	return int(tag.RowsAffected()), nil
}
