package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.UsageStore = (*Store)(nil)

// addUsageSQL adds one row's counters to model_usage, creating the row.
const addUsageSQL = `INSERT INTO model_usage (day, tenant, model, task, calls, input_tokens, output_tokens, cost_nano_usd)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (day, tenant, model, task) DO UPDATE SET
	calls = model_usage.calls + excluded.calls,
	input_tokens = model_usage.input_tokens + excluded.input_tokens,
	output_tokens = model_usage.output_tokens + excluded.output_tokens,
	cost_nano_usd = model_usage.cost_nano_usd + excluded.cost_nano_usd`

// AddUsage implements pipeline.UsageStore: the rows of one call go in one batch (one round
// trip), each an atomic upsert increment; usage is durable and shared by the fleet.
func (s *Store) AddUsage(ctx context.Context, rows []pipeline.UsageRow) error {
	if len(rows) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, r := range rows {
		b.Queue(addUsageSQL, r.Day, r.Tenant, r.Model, r.Task, r.Calls, r.InputTokens, r.OutputTokens, r.CostNanoUSD)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("add usage", err))
	}
	return nil
}

// Usage implements pipeline.UsageStore.
func (s *Store) Usage(ctx context.Context, f pipeline.UsageFilter) ([]pipeline.UsageRow, error) {
	q := strings.Builder{}
	q.WriteString(`SELECT day, tenant, model, task, calls, input_tokens, output_tokens, cost_nano_usd FROM model_usage WHERE day BETWEEN $1 AND $2`)
	args := []any{f.From, f.To}
	for _, c := range []struct{ col, v string }{{"tenant", f.Tenant}, {"model", f.Model}, {"task", f.Task}} {
		if c.v != "" {
			args = append(args, c.v)
			q.WriteString(" AND " + c.col + " = $" + strconv.Itoa(len(args)))
		}
	}
	rs, err := s.pool.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read usage", err))
	}
	out, err := pgx.CollectRows(rs, func(row pgx.CollectableRow) (pipeline.UsageRow, error) {
		var r pipeline.UsageRow
		err := row.Scan(&r.Day, &r.Tenant, &r.Model, &r.Task, &r.Calls, &r.InputTokens, &r.OutputTokens, &r.CostNanoUSD)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("read usage", err))
	}
	return out, nil
}
