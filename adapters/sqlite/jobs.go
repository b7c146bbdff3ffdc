package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

const (
	// defaultListLimit is the page size of a List with no Limit.
	defaultListLimit = 50
	// maxListLimit caps the page size of a List.
	maxListLimit = 1000
)

// columns are the jobs columns in the order of insertArgs and scanRecord.
const columns = storecodec.Columns

// Create stores rec unless a job with its JobID, or with its non-empty IdempotencyKey under
// the same Tenant, exists; see pipeline.JobStore. Times are stored at millisecond precision
// and returned in UTC; a zero CreatedAt means now and a zero UpdatedAt means CreatedAt.
// It is atomic and idempotent: racing creates of one id or key store one job.
func (s *Store) Create(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	rec, err := storecodec.ForCreate(rec)
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("sqlite store: %w", err)
	}
	args, err := insertArgs(rec)
	if err != nil {
		return messages.JobRecord{}, false, err
	}
	r := getRequest()
	r.ctx, r.op, r.id, r.rec, r.args = ctx, opCreate, rec.JobID, rec, args
	err = s.submit(r)
	out, created := r.out, r.created
	putRequest(r)
	if err != nil {
		return messages.JobRecord{}, false, err
	}
	return out, created, nil
}

// Get returns the job with that id, or an error wrapping pipeline.ErrNotFound. It reads from
// the read pool and sees every write that has returned.
func (s *Store) Get(ctx context.Context, id string) (messages.JobRecord, error) {
	rec, err := scanRecord(s.get.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return messages.JobRecord{}, fmt.Errorf("job %s: %w", id, pipeline.ErrNotFound)
	}
	return rec, err
}

// ReadLatest returns job id's record as the store's writer reads it, or ErrNotFound; see
// pipeline.LatestReader. The read joins the writer's next batch: it sees every write handed
// to the store before it, from the writer's page cache, where a read connection would first
// reread from the write-ahead log the pages the writer's commits changed. It also sees the
// writes of its own batch, which a failed commit may still undo: a caller must treat what it
// reads as a hint that a conditional write confirms (as a deferred claim's COMPLETED write does).
func (s *Store) ReadLatest(ctx context.Context, id string) (messages.JobRecord, error) {
	r := getRequest()
	r.ctx, r.op, r.id = ctx, opRead, id
	err := s.submit(r)
	out := r.out
	putRequest(r)
	if err != nil {
		return messages.JobRecord{}, err
	}
	return out, nil
}

// Transition applies t to job id atomically with pipeline.Transition.Apply; see
// pipeline.JobStore. On ErrConflict the returned record is the job's current state.
func (s *Store) Transition(ctx context.Context, id string, t pipeline.Transition) (messages.JobRecord, error) {
	r := getRequest()
	args, err := appendTransitionArgs(r.args, id, t)
	if err != nil {
		r.answered = true // never handed to the writer: recycle it
		putRequest(r)
		return messages.JobRecord{}, err
	}
	r.ctx, r.op, r.id, r.tr, r.args, r.grouped = ctx, opTransition, id, t, args, t.Grouped
	err = s.submit(r)
	out := r.out
	putRequest(r)
	if err != nil && !errors.Is(err, pipeline.ErrConflict) {
		return messages.JobRecord{}, err
	}
	return out, err
}

// Delete removes job id; deleting a missing job is not an error. Its idempotency key becomes
// free again.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.submit(&request{ctx: ctx, op: opDelete, id: id})
}

// List returns the jobs matching q, newest first by created_at then job_id, and the cursor of
// the next page ("" after the last). A Limit of 0 means 50; Limits above 1000 are cut to
// 1000. Pages are keyset pages: jobs created while paging never shift or repeat a page.
func (s *Store) List(ctx context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error) {
	query, args, limit, err := listQuery(q)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite store: list jobs: %w", err)
	}
	defer rows.Close()
	recs := make([]messages.JobRecord, 0, min(limit+1, 64))
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, "", err
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite store: list jobs: %w", err)
	}
	page, next := storecodec.Page(recs, limit)
	return page, next, nil
}

// listQuery returns List's statement for q, its arguments and the page size. A tenant filter
// repeats the condition of the partial jobs_tenant_created index (migration 0010), as SQLite
// requires to use it.
func listQuery(q pipeline.ListQuery) (query string, args []any, limit int, err error) {
	limit = q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)

	var where []string
	if q.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(q.Status))
	}
	if q.Task != "" {
		where, args = append(where, "task = ?"), append(args, q.Task)
	}
	if q.Tenant != "" {
		where, args = append(where, "tenant = ? AND tenant <> ''"), append(args, q.Tenant)
	}
	if q.Priority != "" {
		where, args = append(where, "priority = ?"), append(args, string(q.Priority))
	}
	if !q.CreatedAfter.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, q.CreatedAfter.UnixMilli())
	}
	if !q.CreatedBefore.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, q.CreatedBefore.UnixMilli())
	}
	if q.Cursor != "" {
		createdAt, jobID, err := storecodec.DecodeListCursor(q.Cursor)
		if err != nil {
			return "", nil, 0, err
		}
		where, args = append(where, "(created_at, job_id) < (?, ?)"), append(args, createdAt, jobID)
	}
	query = "SELECT " + columns + " FROM jobs"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, job_id DESC LIMIT ?"
	args = append(args, limit+1)
	return query, args, limit, nil
}

// insertArgs returns rec as the arguments of the insert statement, in columns order.
func insertArgs(rec messages.JobRecord) ([]any, error) {
	args, err := storecodec.Row(rec, func(t time.Time) any { return t.UnixMilli() })
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	return args, nil
}

type scanner interface {
	Scan(dest ...any) error
}

// scanRecord reads one row of columns. A missing row is sql.ErrNoRows, unwrapped.
func scanRecord(row scanner) (messages.JobRecord, error) {
	var (
		rec                      messages.JobRecord
		status, priority         string
		createdAt, updatedAt     int64
		usage, guardrail, jobErr []byte
		spec, call               []byte
	)
	err := row.Scan(&rec.JobID, &rec.Tenant, &rec.IdempotencyKey, &status, &rec.Task, &priority, &rec.Model,
		&rec.Attempts, &createdAt, &updatedAt, &usage, &guardrail, &jobErr, &rec.ResultURL, &rec.ReplayName, &spec, &call)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, err
	}
	if err != nil {
		return rec, fmt.Errorf("sqlite store: read job: %w", err)
	}
	rec.Status, rec.Priority = messages.Status(status), messages.Priority(priority)
	rec.CreatedAt, rec.UpdatedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(updatedAt).UTC()
	if len(spec) > 0 {
		rec.Spec = spec
	}
	if err := storecodec.DecodeJSONColumns(&rec, usage, guardrail, jobErr, call); err != nil {
		return rec, fmt.Errorf("sqlite store: %w", err)
	}
	return rec, nil
}
