package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.ReplayStore = (*Limits)(nil)

// replayColumns are the columns of replays, in the order replayRow scans them.
const replayColumns = "name, tenant, filters, matched, published, cursor, done, error, dry_run, started_us, updated_us, process, lease_us"

// StartReplay implements pipeline.ReplayStore: one upsert that replaces only a finished row,
// atomic across the processes sharing the file; the current row is read back when it lost.
func (l *Limits) StartReplay(ctx context.Context, r pipeline.Replay) (pipeline.Replay, bool, error) {
	res, err := l.db.ExecContext(ctx, `INSERT INTO replays (`+replayColumns+`) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
ON CONFLICT (name) DO UPDATE SET (`+replayColumns+`) = (excluded.name, excluded.tenant, excluded.filters, excluded.matched,
	excluded.published, excluded.cursor, excluded.done, excluded.error, excluded.dry_run, excluded.started_us,
	excluded.updated_us, excluded.process, excluded.lease_us)
WHERE replays.done <> 0`,
		r.Name, r.Tenant, r.Filters, r.Matched, r.Published, r.Cursor, r.Done, r.Error, r.DryRun,
		toMicros(r.StartedAt), toMicros(r.UpdatedAt), r.Process, toMicros(r.LeaseUntil))
	if err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("sqlite limits: start replay %s: %w: %w", r.Name, pipeline.ErrUnavailable, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("sqlite limits: start replay %s: %w", r.Name, err)
	} else if n == 1 {
		return roundReplay(r), true, nil
	}
	cur, err := l.GetReplay(ctx, r.Name)
	return cur, false, err
}

// SaveReplay implements pipeline.ReplayStore: one update conditioned on the holder.
func (l *Limits) SaveReplay(ctx context.Context, r pipeline.Replay) (bool, error) {
	res, err := l.db.ExecContext(ctx, `UPDATE replays SET matched = ?3, published = ?4, cursor = ?5, done = ?6, error = ?7,
	updated_us = ?8, lease_us = ?9
WHERE name = ?1 AND process = ?2`,
		r.Name, r.Process, r.Matched, r.Published, r.Cursor, r.Done, r.Error, toMicros(r.UpdatedAt), toMicros(r.LeaseUntil))
	if err != nil {
		return false, fmt.Errorf("sqlite limits: save replay %s: %w: %w", r.Name, pipeline.ErrUnavailable, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite limits: save replay %s: %w", r.Name, err)
	}
	return n == 1, nil
}

// ClaimReplay implements pipeline.ReplayStore: one update conditioned on the expired lease,
// returning the claimed row.
func (l *Limits) ClaimReplay(ctx context.Context, name, process string, now, until time.Time) (pipeline.Replay, bool, error) {
	r, err := scanReplay(l.db.QueryRowContext(ctx, `UPDATE replays SET process = ?2, lease_us = ?4, updated_us = ?3
WHERE name = ?1 AND done = 0 AND lease_us < ?3
RETURNING `+replayColumns, name, process, toMicros(now), toMicros(until)))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := l.GetReplay(ctx, name); err != nil {
			return pipeline.Replay{}, false, err
		}
		return pipeline.Replay{}, false, nil
	}
	if err != nil {
		return pipeline.Replay{}, false, fmt.Errorf("sqlite limits: claim replay %s: %w: %w", name, pipeline.ErrUnavailable, err)
	}
	return r, true, nil
}

// GetReplay implements pipeline.ReplayStore: one primary-key read.
func (l *Limits) GetReplay(ctx context.Context, name string) (pipeline.Replay, error) {
	r, err := scanReplay(l.db.QueryRowContext(ctx, "SELECT "+replayColumns+" FROM replays WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.Replay{}, fmt.Errorf("replay %s: %w", name, pipeline.ErrNotFound)
	}
	if err != nil {
		return pipeline.Replay{}, fmt.Errorf("sqlite limits: read replay %s: %w: %w", name, pipeline.ErrUnavailable, err)
	}
	return r, nil
}

// Replays implements pipeline.ReplayStore: a read of the started_us index.
func (l *Limits) Replays(ctx context.Context, tenant string, limit int) ([]pipeline.Replay, error) {
	limit = min(max(limit, 1), pipeline.ReplaysMaxList)
	rows, err := l.db.QueryContext(ctx, "SELECT "+replayColumns+` FROM replays WHERE ?1 = '' OR tenant = ?1
ORDER BY started_us DESC, name LIMIT ?2`, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite limits: list replays: %w: %w", pipeline.ErrUnavailable, err)
	}
	defer rows.Close()
	var out []pipeline.Replay
	for rows.Next() {
		r, err := scanReplay(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite limits: list replays: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite limits: list replays: %w: %w", pipeline.ErrUnavailable, err)
	}
	return out, nil
}

// scanReplay reads one row of replayColumns.
func scanReplay(row interface{ Scan(...any) error }) (pipeline.Replay, error) {
	var r pipeline.Replay
	var started, updated, lease int64
	err := row.Scan(&r.Name, &r.Tenant, &r.Filters, &r.Matched, &r.Published, &r.Cursor, &r.Done, &r.Error, &r.DryRun,
		&started, &updated, &r.Process, &lease)
	r.StartedAt, r.UpdatedAt, r.LeaseUntil = fromMicros(started), fromMicros(updated), fromMicros(lease)
	return r, err
}

// roundReplay is r as the store keeps it: times in UTC, to the microsecond.
func roundReplay(r pipeline.Replay) pipeline.Replay {
	r.StartedAt, r.UpdatedAt, r.LeaseUntil = fromMicros(toMicros(r.StartedAt)), fromMicros(toMicros(r.UpdatedAt)), fromMicros(toMicros(r.LeaseUntil))
	return r
}

// ForgetReplays implements pipeline.ReplayStore: one delete.
func (l *Limits) ForgetReplays(ctx context.Context, before time.Time) (int, error) {
	res, err := l.db.ExecContext(ctx, `DELETE FROM replays WHERE updated_us < ?1 AND lease_us < ?1`, toMicros(before))
	if err != nil {
		return 0, fmt.Errorf("sqlite limits: forget replays: %w: %w", pipeline.ErrUnavailable, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite limits: forget replays: %w", err)
	}
	return int(n), nil
}
