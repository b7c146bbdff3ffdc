package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	selectSQL = "SELECT " + columns + " FROM jobs WHERE job_id = $1"
	// transitionSQL is pipeline.Transition.Apply as one conditional write, with the arguments
	// transitionArgs gives: $1 the job id, $2 To, $3 From ($4 the terminal statuses, which an
	// empty From may not leave), $5 ResetAttempts, $6 AttemptsDelta, $7 Model, $8 Usage,
	// $9 Guardrail, $10 Error (JSON, NULL when unset), $11 ResultURL, $12 ReplayName, $13 whether
	// Call is set and $14 its JSON (NULL when it records nothing), $15 the update time. It bumps
	// version, the row's count of updates. No row back means the job is missing or in a status
	// From does not list.
	transitionSQL = `UPDATE jobs SET
	status = $2::text,
	attempts = GREATEST(CASE WHEN $5::boolean THEN 0 ELSE attempts END + $6::integer, 0),
	model = CASE WHEN $7::text = '' THEN model ELSE $7::text END,
	usage = COALESCE($8::jsonb, usage),
	guardrail = COALESCE($9::jsonb, guardrail),
	error = CASE WHEN $10::jsonb IS NOT NULL THEN $10::jsonb WHEN $2::text IN ('QUEUED', 'COMPLETED') THEN NULL ELSE error END,
	result_url = CASE WHEN $11::text = '' THEN result_url ELSE $11::text END,
	replay_name = CASE WHEN $12::text = '' THEN replay_name ELSE $12::text END,
	model_call = CASE WHEN $13::boolean THEN $14::jsonb ELSE model_call END,
	updated_at = $15::timestamptz,
	version = version + 1
WHERE job_id = $1 AND CASE WHEN cardinality($3::text[]) = 0 THEN status <> ALL($4::text[]) ELSE status = ANY($3::text[]) END
RETURNING ` + columns
)

// transitionQuietSQL is transitionSQL returning nothing, for a Transition.Unreturned: the row,
// with its spec, does not travel back.
var transitionQuietSQL = strings.TrimSuffix(transitionSQL, "\nRETURNING "+columns)

// Create stores rec unless a job with its JobID, or with its non-empty IdempotencyKey under
// the same Tenant, exists; see pipeline.JobStore. Times are stored at millisecond precision
// and returned in UTC; a zero CreatedAt means now and a zero UpdatedAt means CreatedAt.
// It is atomic and idempotent across processes: racing creates of one id or key store one
// job, and every loser gets that job back with created false. The insert goes to the database
// in a batch with the other writes waiting at the moment (see Transition); only an insert
// that was refused reads the job holding the id or key, on its own. A caller whose ctx ends
// before the answer gets the ctx's error, and the job may still be created.
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
		r := &request{ctx: ctx, op: opCreate, id: rec.JobID, args: args}
		if err := s.submit(r); err != nil {
			return messages.JobRecord{}, false, err
		}
		if r.inserted {
			return rec, true, nil
		}
		// The insert waited for any racing insert of the same id or key to commit, and its
		// batch has committed since, so this read (a new snapshot) sees the winner, unless it
		// was deleted meanwhile.
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

// Transition applies t to job id atomically as pipeline.Transition.Apply would; see
// pipeline.JobStore. It is one conditional UPDATE (transitionSQL) that checks t.From and writes
// the changed columns in the database, without reading the job first: racing transitions
// serialize on the row and at most one leaves a given status. Only when no row comes back does
// it read the job, to return ErrNotFound, or ErrConflict with the job's current state.
//
// The UPDATE is not sent on its own: the Store's writers (see Config.MaxConns) each take the
// Creates and Transitions waiting at the moment, up to 256, and send them as one pipelined
// batch, one round trip and one commit. A write's answer comes after its batch has committed,
// so a Get that follows sees it. One write's failure, conflict or missing job does not fail the
// others of its batch. A caller whose ctx ends before the answer gets the ctx's error, and the
// transition may still be applied. An Unreturned transition without an EventID is sent
// without RETURNING and answers a zero record when it applied.
func (s *Store) Transition(ctx context.Context, id string, t pipeline.Transition) (messages.JobRecord, error) {
	args, err := transitionArgs(id, t)
	if err != nil {
		return messages.JobRecord{}, err
	}
	op := opTransition
	switch {
	case t.EventID != "":
		op, args = opTransitionEvent, append(args, t.EventID)
	case t.Unreturned:
		op = opTransitionQuiet
	}
	for {
		r := &request{ctx: ctx, op: op, id: id, args: args}
		if err := s.submit(r); err != nil {
			return messages.JobRecord{}, err
		}
		if r.found {
			if op == opTransitionQuiet {
				return messages.JobRecord{}, nil
			}
			return r.row.record()
		}
		cur, err := s.Get(ctx, id)
		if err != nil {
			return messages.JobRecord{}, err
		}
		if !t.Allows(cur.Status) {
			return cur, fmt.Errorf("job %s is %s, not one of %v: %w", id, cur.Status, t.From, pipeline.ErrConflict)
		}
		// The job moved into a status t may leave between the update and the read: try again.
		if err := ctx.Err(); err != nil {
			return messages.JobRecord{}, fmt.Errorf("postgres store: transition job %s: %w", id, context.Cause(ctx))
		}
	}
}

// terminalStatuses are the statuses a Transition with an empty From may not leave.
var terminalStatuses = func() []string {
	var ss []string
	for _, st := range []messages.Status{messages.StatusQueued, messages.StatusProcessing, messages.StatusCompleted,
		messages.StatusFailed, messages.StatusCancelled} {
		if st.Terminal() {
			ss = append(ss, string(st))
		}
	}
	return ss
}()

// transitionArgs returns t on job id as the arguments of transitionSQL. The JSON columns are
// encoded as storecodec encodes a record's; a zero t.At is now.
func transitionArgs(id string, t pipeline.Transition) ([]any, error) {
	from := make([]string, len(t.From))
	for i, st := range t.From {
		from[i] = string(st)
	}
	part := messages.JobRecord{JobID: id, Usage: t.Usage, Guardrail: t.Guardrail, Error: t.Error}
	if t.Call != nil {
		t.Call.ApplyTo(&part)
	}
	cols, err := storecodec.EncodeJSONColumns(part)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if t.AttemptsDelta < math.MinInt32 || t.AttemptsDelta > math.MaxInt32 {
		return nil, fmt.Errorf("postgres store: transition job %s by %d attempts (the attempt count is a 32-bit integer)", id, t.AttemptsDelta)
	}
	at := t.At
	if at.IsZero() {
		at = time.Now()
	}
	return []any{id, string(t.To), from, terminalStatuses, t.ResetAttempts, int32(t.AttemptsDelta), t.Model,
		cols.Usage, cols.Guardrail, cols.Error, t.ResultURL, t.ReplayName, t.Call != nil, cols.ModelCall,
		storecodec.Millis(at)}, nil
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
	query, args, limit, err := listQuery(q)
	if err != nil {
		return nil, "", err
	}
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

// listQuery returns List's statement for q, its arguments and the page size. Each list walks
// one index backwards (migration 0012); a tenant filter repeats the condition of the partial
// jobs_tenant_created_asc index, which the planner takes only then.
func listQuery(q pipeline.ListQuery) (query string, args []any, limit int, err error) {
	limit = q.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)

	var where []string
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
		// Repeats the condition of the partial jobs_tenant_created_asc index (migration 0012): a
		// generic plan of a cached statement cannot prove it from the parameter.
		where = append(where, "tenant = "+arg(q.Tenant)+" AND tenant <> ''")
	}
	if q.Priority != "" {
		where = append(where, "priority = "+arg(string(q.Priority)))
	}
	if !q.CreatedAfter.IsZero() {
		where = append(where, "created_at >= "+arg(storecodec.Millis(q.CreatedAfter)))
	}
	if !q.CreatedBefore.IsZero() {
		where = append(where, "created_at < "+arg(storecodec.Millis(q.CreatedBefore)))
	}
	if q.Cursor != "" {
		createdAt, jobID, err := storecodec.DecodeListCursor(q.Cursor)
		if err != nil {
			return "", nil, 0, err
		}
		where = append(where, "(created_at, job_id) < ("+arg(time.UnixMilli(createdAt).UTC())+", "+arg(jobID)+")")
	}
	query = "SELECT " + columns + " FROM jobs"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, job_id DESC LIMIT " + arg(limit+1)
	return query, args, limit, nil
}

// insertArgs returns rec as the arguments of insertSQL, in columns order.
func insertArgs(rec messages.JobRecord) ([]any, error) {
	args, err := storecodec.Row(rec, func(t time.Time) any { return t })
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return args, nil
}

// scanRecord reads one row of columns. A missing row is pgx.ErrNoRows, unwrapped.
func scanRecord(row pgx.Row) (messages.JobRecord, error) {
	var r jobRow
	if err := row.Scan(r.dest()...); err != nil {
		return messages.JobRecord{}, err
	}
	return r.record()
}

// jobRow is one row of columns as scanned, its JSON columns not decoded yet: the writers scan
// rows and leave the decoding to the callers.
type jobRow struct {
	rec                      messages.JobRecord
	status, priority         string
	usage, guardrail, jobErr []byte
	spec, call               []byte
}

// dest returns the scan destinations of columns, in order.
func (r *jobRow) dest() []any {
	return []any{&r.rec.JobID, &r.rec.Tenant, &r.rec.IdempotencyKey, &r.status, &r.rec.Task, &r.priority, &r.rec.Model,
		&r.rec.Attempts, &r.rec.CreatedAt, &r.rec.UpdatedAt, &r.usage, &r.guardrail, &r.jobErr, &r.rec.ResultURL,
		&r.rec.ReplayName, &r.spec, &r.call}
}

// record returns the scanned row as a JobRecord, times in UTC. A JSON column that does not
// decode is an error naming the job.
func (r *jobRow) record() (messages.JobRecord, error) {
	rec := r.rec
	rec.Status, rec.Priority = messages.Status(r.status), messages.Priority(r.priority)
	rec.CreatedAt, rec.UpdatedAt = rec.CreatedAt.UTC(), rec.UpdatedAt.UTC()
	if len(r.spec) > 0 {
		rec.Spec = r.spec
	}
	if err := storecodec.DecodeJSONColumns(&rec, r.usage, r.guardrail, r.jobErr, r.call); err != nil {
		return rec, fmt.Errorf("postgres store: %w", err)
	}
	return rec, nil
}
