package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.UsageStore = (*Limits)(nil)

// addUsageSQL adds one row's counters: ?1 day, ?2 tenant, ?3 model, ?4 task, ?5 calls, ?6 input
// tokens, ?7 output tokens, ?8 cost.
const addUsageSQL = `INSERT INTO model_usage (day, tenant, model, task, calls, input_tokens, output_tokens, cost_nano_usd)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (day, tenant, model, task) DO UPDATE SET
	calls = calls + excluded.calls,
	input_tokens = input_tokens + excluded.input_tokens,
	output_tokens = output_tokens + excluded.output_tokens,
	cost_nano_usd = cost_nano_usd + excluded.cost_nano_usd`

// AddUsage implements pipeline.UsageStore: the rows of one call in one transaction, so a
// batch costs one commit.
func (l *Limits) AddUsage(ctx context.Context, rows []pipeline.UsageRow) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite limits: add usage: %w: %w", pipeline.ErrUnavailable, err)
	}
	defer func() { _ = tx.Rollback() }()
	st := tx.StmtContext(ctx, l.usage)
	for _, r := range rows {
		if _, err := st.ExecContext(ctx, r.Day, r.Tenant, r.Model, r.Task, r.Calls, r.InputTokens, r.OutputTokens, r.CostNanoUSD); err != nil {
			return fmt.Errorf("sqlite limits: add usage of %s: %w: %w", r.Day, pipeline.ErrUnavailable, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite limits: add usage: %w: %w", pipeline.ErrUnavailable, err)
	}
	return nil
}

// Usage implements pipeline.UsageStore.
func (l *Limits) Usage(ctx context.Context, f pipeline.UsageFilter) ([]pipeline.UsageRow, error) {
	q := strings.Builder{}
	q.WriteString(`SELECT day, tenant, model, task, calls, input_tokens, output_tokens, cost_nano_usd FROM model_usage WHERE day BETWEEN ? AND ?`)
	args := []any{f.From, f.To}
	for _, c := range []struct{ col, v string }{{"tenant", f.Tenant}, {"model", f.Model}, {"task", f.Task}} {
		if c.v != "" {
			q.WriteString(" AND " + c.col + " = ?")
			args = append(args, c.v)
		}
	}
	rs, err := l.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite limits: read usage: %w: %w", pipeline.ErrUnavailable, err)
	}
	defer rs.Close()
	var out []pipeline.UsageRow
	for rs.Next() {
		var r pipeline.UsageRow
		if err := rs.Scan(&r.Day, &r.Tenant, &r.Model, &r.Task, &r.Calls, &r.InputTokens, &r.OutputTokens, &r.CostNanoUSD); err != nil {
			return nil, fmt.Errorf("sqlite limits: read usage: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite limits: read usage: %w: %w", pipeline.ErrUnavailable, err)
	}
	return out, nil
}
