package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.PaceStore = (*Store)(nil)

// paceColumns are the columns of model_pace after model and before version.
const paceColumns = "rate, base, cut_us, hold_us, second, answers, prev_answers"

// swapPaceSQL writes a pace row when its version is still $9; insertPaceSQL creates it when
// there is none. Each is one atomic statement.
const (
	swapPaceSQL = `UPDATE model_pace SET (` + paceColumns + `, version) = ($2, $3, $4, $5, $6, $7, $8, $9::bigint + 1)
WHERE model = $1 AND version = $9`
	insertPaceSQL = `INSERT INTO model_pace (model, ` + paceColumns + `, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::bigint + 1)
ON CONFLICT (model) DO NOTHING`
)

// Pace implements pipeline.PaceStore: one primary-key read.
func (s *Store) Pace(ctx context.Context, model string) (pipeline.Pace, error) {
	var p pipeline.Pace
	var cut, hold int64
	err := s.pool.QueryRow(ctx, "SELECT "+paceColumns+", version FROM model_pace WHERE model = $1", model).
		Scan(&p.Rate, &p.Base, &cut, &hold, &p.Second, &p.Answers, &p.PrevAnswers, &p.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Pace{}, nil
	}
	if err != nil {
		return pipeline.Pace{}, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read the pace of "+model, err))
	}
	p.CutAt, p.HoldUntil = fromMicros(cut), fromMicros(hold)
	return p, nil
}

// SwapPace implements pipeline.PaceStore: a compare-and-set on the row's version.
func (s *Store) SwapPace(ctx context.Context, model string, next pipeline.Pace) (bool, error) {
	q := swapPaceSQL
	if next.Version == 0 {
		q = insertPaceSQL
	}
	tag, err := s.pool.Exec(ctx, q, model, next.Rate, next.Base, toMicros(next.CutAt), toMicros(next.HoldUntil),
		next.Second, next.Answers, next.PrevAnswers, next.Version)
	if err != nil {
		return false, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("write the pace of "+model, err))
	}
	return tag.RowsAffected() == 1, nil
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
