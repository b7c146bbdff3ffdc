package storecodec

import (
	"errors"
	"time"

	"github.com/infleet/infleet/messages"
)

// ErrNoJobID is ForCreate's answer to a record without a job id.
var ErrNoJobID = errors.New("create a job without a job id (set JobRecord.JobID)")

// ForCreate returns rec as a store writes a new record: times at millisecond precision in UTC,
// a zero CreatedAt taken as now and a zero UpdatedAt as CreatedAt, an empty Spec as none. A
// record without a JobID is ErrNoJobID.
func ForCreate(rec messages.JobRecord) (messages.JobRecord, error) {
	if rec.JobID == "" {
		return rec, ErrNoJobID
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now()
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = rec.CreatedAt
	}
	rec.CreatedAt, rec.UpdatedAt = Millis(rec.CreatedAt), Millis(rec.UpdatedAt)
	if len(rec.Spec) == 0 {
		rec.Spec = nil
	}
	return rec, nil
}

// Columns are the columns of the SQL stores' jobs table in the order Row gives their values
// (and their scanners read them).
const Columns = "job_id, tenant, idempotency_key, status, task, priority, model, attempts, created_at, updated_at, " +
	"usage, guardrail, error, result_url, replay_name, spec, model_call"

// Row returns rec as the values of Columns, in order, with its two times as at gives them (a
// time.Time for a driver that takes one, Unix milliseconds for one that does not).
func Row(rec messages.JobRecord, at func(time.Time) any) ([]any, error) {
	cols, err := EncodeJSONColumns(rec)
	if err != nil {
		return nil, err
	}
	var spec any
	if len(rec.Spec) > 0 {
		spec = []byte(rec.Spec)
	}
	return []any{
		rec.JobID, rec.Tenant, rec.IdempotencyKey, string(rec.Status), rec.Task, string(rec.Priority), rec.Model,
		rec.Attempts, at(rec.CreatedAt), at(rec.UpdatedAt), cols.Usage, cols.Guardrail, cols.Error,
		rec.ResultURL, rec.ReplayName, spec, cols.ModelCall,
	}, nil
}
