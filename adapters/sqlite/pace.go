package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.PaceStore = (*Limits)(nil)

// paceColumns are the columns of model_pace after model and before version.
const paceColumns = "rate, base, cut_us, hold_us, second, answers, prev_answers"

// Pace implements pipeline.PaceStore: one primary-key read.
func (l *Limits) Pace(ctx context.Context, model string) (pipeline.Pace, error) {
	var p pipeline.Pace
	var cut, hold int64
	err := l.db.QueryRowContext(ctx, "SELECT "+paceColumns+", version FROM model_pace WHERE model = ?", model).
		Scan(&p.Rate, &p.Base, &cut, &hold, &p.Second, &p.Answers, &p.PrevAnswers, &p.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.Pace{}, nil
	}
	if err != nil {
		return pipeline.Pace{}, fmt.Errorf("sqlite limits: read the pace of %s: %w: %w", model, pipeline.ErrUnavailable, err)
	}
	p.CutAt, p.HoldUntil = fromMicros(cut), fromMicros(hold)
	return p, nil
}

// SwapPace implements pipeline.PaceStore: one statement, an insert that does nothing when the
// row exists (version 0) or an update conditioned on the version, atomic across the processes
// sharing the file.
func (l *Limits) SwapPace(ctx context.Context, model string, next pipeline.Pace) (bool, error) {
	args := []any{model, next.Rate, next.Base, toMicros(next.CutAt), toMicros(next.HoldUntil),
		next.Second, next.Answers, next.PrevAnswers, next.Version}
	q := `UPDATE model_pace SET (` + paceColumns + `, version) = (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 + 1)
WHERE model = ?1 AND version = ?9`
	if next.Version == 0 {
		q = `INSERT INTO model_pace (model, ` + paceColumns + `, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 + 1)
ON CONFLICT (model) DO NOTHING`
	}
	res, err := l.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("sqlite limits: write the pace of %s: %w: %w", model, pipeline.ErrUnavailable, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite limits: write the pace of %s: %w", model, err)
	}
	return n == 1, nil
}

// toMicros is t in Unix microseconds; 0 for the zero time.
func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros reads toMicros back.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
