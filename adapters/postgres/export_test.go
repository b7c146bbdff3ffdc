package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/pipeline"
)

// DropSchema drops schema and everything in it, for tests.
func DropSchema(ctx context.Context, s *Store, schema string) error {
	_, err := s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	return err
}

// MigrationRows counts the rows of s's schema_migrations, for tests.
func MigrationRows(ctx context.Context, s *Store) (n int, err error) {
	err = s.pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n)
	return n, err
}

// ExpireSQL is the statement DeleteFinishedBefore runs, for query-plan tests.
const ExpireSQL = expireSQL

// Explain returns the plan of sql with args, one line per row.
func Explain(ctx context.Context, s *Store, sql string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		return nil, err
	}
	return planLines(rows)
}

// planLines reads the rows of an EXPLAIN, one line each.
func planLines(rows pgx.Rows) ([]string, error) {
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return nil, err
		}
		plan = append(plan, line)
	}
	return plan, rows.Err()
}

// ListQuery is the statement List runs for q, with its arguments, for query-plan tests.
func ListQuery(q pipeline.ListQuery) (string, []any, error) {
	query, args, _, err := listQuery(q)
	return query, args, err
}

// ExplainWithout returns the plan of sql with args on one connection where the planner may
// neither scan tables sequentially nor sort, so that the plan shows whether an index serves
// the query in its order however few rows the table holds.
func ExplainWithout(ctx context.Context, s *Store, sql string, args ...any) ([]string, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off"); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		return nil, err
	}
	return planLines(rows)
}

// Exec runs sql on s's schema, for tests that shape the data in bulk.
func Exec(ctx context.Context, s *Store, sql string, args ...any) error {
	_, err := s.pool.Exec(ctx, sql, args...)
	return err
}

// OpenHeld opens a store whose writers, each time they take a write, wait to receive from hold
// (or for it to be closed) before they gather the rest of their batch, for tests that need
// writes to go out together.
func OpenHeld(ctx context.Context, cfg Config, hold chan struct{}) (*Store, error) {
	return open(ctx, cfg, hold)
}

// QueueLen returns how many writes wait for a writer.
func QueueLen(s *Store) int { return len(s.reqs) }

// Batches returns how many batches s's writers have taken.
func Batches(s *Store) int64 { return s.batches.Load() }
