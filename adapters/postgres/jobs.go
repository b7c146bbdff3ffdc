package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

const (
	// defaultListLimit is the page size of a List with no Limit.
	defaultListLimit = 50
	// maxListLimit caps the page size of a List.
	maxListLimit = 1000
	// createAttempts bounds how often Create retries when the job that refused its insert is
	// deleted before it could be read.
	createAttempts = 5
)

// columns are the jobs columns in the order of insertArgs and scanRecord.
const columns = storecodec.Columns

const (
	insertSQL = "INSERT INTO jobs (" + columns + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING"
	// selectExistingSQL finds the job that refused an insert: the one with its id, else the
	// one with its tenant and non-empty key.
	selectExistingSQL = "SELECT " + columns + " FROM jobs WHERE job_id = $1 OR (tenant = $2 AND idempotency_key = $3 AND $3 <> '') " +
		"ORDER BY job_id = $1 DESC LIMIT 1"
	selectSQL        = "SELECT " + columns + " FROM jobs WHERE job_id = $1"
	selectVersionSQL = "SELECT " + columns + ", version FROM jobs WHERE job_id = $1"
	// updateSQL writes a transition's result only over the version it was computed from.
	updateSQL = "UPDATE jobs SET status = $3, model = $4, attempts = $5, updated_at = $6, usage = $7, guardrail = $8, " +
		"error = $9, result_url = $10, replay_name = $11, model_call = $12, version = version + 1 WHERE job_id = $1 AND version = $2"
)

// Create stores rec unless a job with its JobID, or with its non-empty IdempotencyKey under
// the same Tenant, exists; see pipeline.JobStore. Times are stored at millisecond precision
// and returned in UTC; a zero CreatedAt means now and a zero UpdatedAt means CreatedAt.
// It is atomic and idempotent across processes: racing creates of one id or key store one
// job, and every loser gets that job back with created false.
func (s *Store) Create(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	rec, err := storecodec.ForCreate(rec)
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("postgres store: %w", err)
	}
	args, err := insertArgs(rec)
	if err != nil {
		return messages.JobRecord{}, false, err
	}
	for range createAttempts {
		tag, err := s.pool.Exec(ctx, insertSQL, args...)
		if err != nil {
			return messages.JobRecord{}, false, s.wrap("insert job "+rec.JobID, err)
		}
		if tag.RowsAffected() == 1 {
			return rec, true, nil
		}
		// The insert waited for any racing insert of the same id or key to commit, so this
		// read (a new snapshot) sees the winner, unless it was deleted meanwhile.
		existing, err := scanRecord(s.pool.QueryRow(ctx, selectExistingSQL, rec.JobID, rec.Tenant, rec.IdempotencyKey))
		if err == nil {
			return existing, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return messages.JobRecord{}, false, s.wrap("read job "+rec.JobID, err)
		}
	}
	return messages.JobRecord{}, false, fmt.Errorf("postgres store: insert of job %s was refused %d times but no job holds its id or idempotency key (jobs are being deleted as fast as they are created; retry)", rec.JobID, createAttempts)
}

// Get returns the job with that id, or an error wrapping pipeline.ErrNotFound. It sees every
// write that has returned, from any process.
func (s *Store) Get(ctx context.Context, id string) (messages.JobRecord, error) {
	rec, err := scanRecord(s.pool.QueryRow(ctx, selectSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return messages.JobRecord{}, fmt.Errorf("job %s: %w", id, pipeline.ErrNotFound)
	}
	if err != nil {
		return messages.JobRecord{}, s.wrap("get job "+id, err)
	}
	return rec, nil
}

// Transition applies t to job id atomically with pipeline.Transition.Apply; see
// pipeline.JobStore. It is a compare-and-swap on the row's version: it reads the job, checks
// t.From, applies t and writes the result only if no other write came in between, else reads
// again. Two statements, no transaction held open across them; racing transitions serialize
// and at most one leaves a given status. On ErrConflict the returned record is the job's
// current state.
func (s *Store) Transition(ctx context.Context, id string, t pipeline.Transition) (messages.JobRecord, error) {
	for {
		var version int64
		cur, err := scanRecord(s.pool.QueryRow(ctx, selectVersionSQL, id), &version)
		if errors.Is(err, pgx.ErrNoRows) {
			return messages.JobRecord{}, fmt.Errorf("job %s: %w", id, pipeline.ErrNotFound)
		}
		if err != nil {
			return messages.JobRecord{}, s.wrap("read job "+id, err)
		}
		if !t.Allows(cur.Status) {
			return cur, fmt.Errorf("job %s is %s, not one of %v: %w", id, cur.Status, t.From, pipeline.ErrConflict)
		}
		next := t.Apply(cur)
		next.UpdatedAt = storecodec.Millis(next.UpdatedAt)
		cols, err := storecodec.EncodeJSONColumns(next)
		if err != nil {
			return messages.JobRecord{}, fmt.Errorf("postgres store: %w", err)
		}
		tag, err := s.pool.Exec(ctx, updateSQL, id, version, string(next.Status), next.Model, next.Attempts, next.UpdatedAt,
			cols.Usage, cols.Guardrail, cols.Error, next.ResultURL, next.ReplayName, cols.ModelCall)
		if err != nil {
			return messages.JobRecord{}, s.wrap("update job "+id, err)
		}
		if tag.RowsAffected() == 1 {
			return next, nil
		}
		// Another write won the row since the read (or deleted it): start over from its result.
		if err := ctx.Err(); err != nil {
			return messages.JobRecord{}, fmt.Errorf("postgres store: transition job %s: %w", id, context.Cause(ctx))
		}
	}
}

// Delete removes job id; deleting a missing job is not an error. Its idempotency key becomes
// free again.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM jobs WHERE job_id = $1", id); err != nil {
		return s.wrap("delete job "+id, err)
	}
	return nil
}

// List returns the jobs matching q, newest first by created_at then job_id, and the cursor of
// the next page ("" after the last). A Limit of 0 means 50; Limits above 1000 are cut to
// 1000. Pages are keyset pages: jobs created while paging never shift or repeat a page.
func (s *Store) List(ctx context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)

	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Status != "" {
		where = append(where, "status = "+arg(string(q.Status)))
	}
	if q.Task != "" {
		where = append(where, "task = "+arg(q.Task))
	}
	if q.Tenant != "" {
		where = append(where, "tenant = "+arg(q.Tenant))
	}
	if q.Cursor != "" {
		createdAt, jobID, err := storecodec.DecodeListCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at, job_id) < ("+arg(time.UnixMilli(createdAt).UTC())+", "+arg(jobID)+")")
	}
	query := "SELECT " + columns + " FROM jobs"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, job_id DESC LIMIT " + arg(limit+1)

	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", s.wrap("list jobs", err)
	}
	defer rows.Close()
	recs := make([]messages.JobRecord, 0, min(limit+1, 64))
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, "", s.wrap("list jobs", err)
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.wrap("list jobs", err)
	}
	page, next := storecodec.Page(recs, limit)
	return page, next, nil
}

// insertArgs returns rec as the arguments of insertSQL, in columns order.
func insertArgs(rec messages.JobRecord) ([]any, error) {
	args, err := storecodec.Row(rec, func(t time.Time) any { return t })
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return args, nil
}

// scanRecord reads one row of columns, then of the columns that extra are for. A missing row
// is pgx.ErrNoRows, unwrapped.
func scanRecord(row pgx.Row, extra ...any) (messages.JobRecord, error) {
	var (
		rec                      messages.JobRecord
		status, priority         string
		usage, guardrail, jobErr []byte
		spec, call               []byte
	)
	dest := append([]any{&rec.JobID, &rec.Tenant, &rec.IdempotencyKey, &status, &rec.Task, &priority, &rec.Model,
		&rec.Attempts, &rec.CreatedAt, &rec.UpdatedAt, &usage, &guardrail, &jobErr, &rec.ResultURL, &rec.ReplayName, &spec, &call},
		extra...)
	err := row.Scan(dest...)
	if err != nil {
		return rec, err
	}
	rec.Status, rec.Priority = messages.Status(status), messages.Priority(priority)
	rec.CreatedAt, rec.UpdatedAt = rec.CreatedAt.UTC(), rec.UpdatedAt.UTC()
	if len(spec) > 0 {
		rec.Spec = spec
	}
	if err := storecodec.DecodeJSONColumns(&rec, usage, guardrail, jobErr, call); err != nil {
		return rec, fmt.Errorf("postgres store: %w", err)
	}
	return rec, nil
}
