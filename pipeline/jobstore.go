package pipeline

import (
	"context"
	"time"

	"github.com/infleet/infleet/messages"
)

// JobStore keeps job records. Implementations are safe for concurrent use by many goroutines
// and, for the fleet stores, by many processes: Create and Transition are atomic conditional
// writes, so two racing writers never both win.
type JobStore interface {
	// Create stores rec unless a job with the same JobID, or with the same non-empty
	// IdempotencyKey for the same Tenant, already exists. It returns the stored record and
	// whether this call created it; an existing record is returned unchanged with created false.
	Create(ctx context.Context, rec messages.JobRecord) (stored messages.JobRecord, created bool, err error)
	// Get returns the job with that id, or ErrNotFound.
	Get(ctx context.Context, id string) (messages.JobRecord, error)
	// Transition applies t to the job atomically. When the job's status is not in t.From it
	// returns the current record and ErrConflict; a missing job is ErrNotFound.
	Transition(ctx context.Context, id string, t Transition) (messages.JobRecord, error)
	// List returns jobs matching q, newest first, and a cursor for the next page ("" at the end).
	List(ctx context.Context, q ListQuery) ([]messages.JobRecord, string, error)
	// Delete removes a job record; deleting a missing job is not an error. Intake uses it to
	// undo a record whose message could not be queued.
	Delete(ctx context.Context, id string) error
}

// LatestReader is a JobStore that reads a job where its writes are made, cheaper than Get
// for a record that writes keep changing (SQLite: on the writer's connection, whose pages are
// current). ReadLatest returns what Get would, or ErrNotFound. Workers read a job this way
// before running it when its claim is deferred.
type LatestReader interface {
	ReadLatest(ctx context.Context, id string) (messages.JobRecord, error)
}

// CancelLog is an optional ability of a JobStore: the jobs cancelled, in the order their
// cancellations were written. CancelledSince returns the ids cancelled after position after
// (0: everything kept), at most a page of them, and the position to ask from next (after
// itself when there is nothing new). An entry is kept as long as the job's record. Workers
// that hold the log run a job's first delivery without reading its record first when the
// job is not in it (worker.Config.ClaimAfter).
type CancelLog interface {
	CancelledSince(ctx context.Context, after int64) (ids []string, next int64, err error)
}

// Transition is a conditional change of a job's status and the fields that go with it.
type Transition struct {
	// From lists the statuses the job may be in; empty means any non-terminal status.
	From []messages.Status
	// To is the new status.
	To messages.Status
	// AttemptsDelta is added to the attempt count (1 when a worker starts the job, -1 when
	// shutdown hands it back unfinished).
	AttemptsDelta int
	// ResetAttempts sets the attempt count to zero before AttemptsDelta is added.
	ResetAttempts bool
	// Model, Usage, Guardrail, ResultURL and ReplayName replace the stored value when set.
	Model      string
	Usage      *messages.Usage
	Guardrail  *messages.GuardrailReport
	ResultURL  string
	ReplayName string
	// Call, when set, replaces how the model layer answered (degraded, fallbacks, prompt,
	// batch job).
	Call *ModelCall
	// Error replaces the stored error when set; a transition to QUEUED or COMPLETED clears it
	// when nil.
	Error *messages.JobError
	// At is the update time; zero means now.
	At time.Time
	// EventID, when set, asks a store that is an Outbox to record the lifecycle event of the
	// record this transition writes (NotificationOf the result, with this id) in the same
	// atomic write, so the event exists exactly when the transition does. Stores that are not
	// an Outbox ignore it, and Apply plays no part in it.
	EventID string
	// Unreturned, when set, tells the store that the caller needs no record back from a
	// write that succeeds: it applies the transition to its own copy. A store may then skip
	// reading the row it wrote and return a zero JobRecord with a nil error; a refused write
	// still returns the current record with ErrConflict. Stores may ignore it, and do when
	// EventID is set (the event is made from the record written).
	Unreturned bool
	// Grouped, when set, tells the store that no job waits for this write: the caller only
	// acknowledges a message once it lands (a worker's completion, written after the job gave
	// up its place). A store that commits writes in groups may hold it a few milliseconds, so
	// that it commits with others instead of paying a commit of its own; it still returns only
	// once the write is durable, or with the error that stopped it. Stores may ignore it.
	Grouped bool
}

// Allows reports whether t may leave status s.
func (t Transition) Allows(s messages.Status) bool {
	if len(t.From) == 0 {
		return !s.Terminal()
	}
	for _, f := range t.From {
		if f == s {
			return true
		}
	}
	return false
}

// Apply returns rec changed by t, without checking t.From. Stores that read, change and write
// a record in one transaction use it so that every store applies a transition the same way.
func (t Transition) Apply(rec messages.JobRecord) messages.JobRecord {
	rec.Status = t.To
	if t.ResetAttempts {
		rec.Attempts = 0
	}
	rec.Attempts += t.AttemptsDelta
	if rec.Attempts < 0 {
		rec.Attempts = 0
	}
	if t.Model != "" {
		rec.Model = t.Model
	}
	if t.Usage != nil {
		u := *t.Usage
		rec.Usage = &u
	}
	if t.Guardrail != nil {
		rec.Guardrail = t.Guardrail
	}
	if t.ResultURL != "" {
		rec.ResultURL = t.ResultURL
	}
	if t.ReplayName != "" {
		rec.ReplayName = t.ReplayName
	}
	if t.Call != nil {
		t.Call.ApplyTo(&rec)
	}
	switch {
	case t.Error != nil:
		e := *t.Error
		rec.Error = &e
	case t.To == messages.StatusQueued || t.To == messages.StatusCompleted:
		rec.Error = nil
	}
	rec.UpdatedAt = t.At
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = time.Now().UTC()
	}
	return rec
}

// ModelCall is how the model layer answered a job, as a JobRecord keeps it, and where a
// streaming job's answer is being streamed from.
type ModelCall struct {
	Degraded  bool     `json:"degraded,omitempty"`
	Fallbacks []string `json:"fallbacks,omitempty"`
	Prompt    string   `json:"prompt,omitempty"`
	// StreamFrom is the JobRecord's StreamFrom.
	StreamFrom string `json:"stream_from,omitempty"`
	// BatchJob is the batch inference job holding or answering the job (JobRecord.BatchJob).
	BatchJob string `json:"batch_job,omitempty"`
	// Batch is where the job stands in batch inference (JobRecord.BatchInference).
	Batch *messages.BatchInference `json:"batch,omitempty"`
}

// ModelCallOf returns what rec records of its model call, or nil when there is nothing.
func ModelCallOf(rec messages.JobRecord) *ModelCall {
	if !rec.Degraded && len(rec.Fallbacks) == 0 && rec.Prompt == "" && rec.StreamFrom == "" && rec.BatchJob == "" && rec.BatchInference == nil {
		return nil
	}
	return &ModelCall{Degraded: rec.Degraded, Fallbacks: rec.Fallbacks, Prompt: rec.Prompt, StreamFrom: rec.StreamFrom, BatchJob: rec.BatchJob, Batch: rec.BatchInference}
}

// ApplyTo sets rec's fields of the model call to c's, replacing them all.
func (c *ModelCall) ApplyTo(rec *messages.JobRecord) {
	rec.Degraded, rec.Fallbacks, rec.Prompt, rec.StreamFrom, rec.BatchJob = c.Degraded, c.Fallbacks, c.Prompt, c.StreamFrom, c.BatchJob
	rec.BatchInference = c.Batch
}

// ListQuery selects jobs for JobStore.List.
type ListQuery struct {
	// Status and Task filter when set.
	Status messages.Status
	Task   string
	// Tenant scopes the list when set (an operator lists with it empty).
	Tenant string
	// Priority filters when set.
	Priority messages.Priority
	// CreatedAfter and CreatedBefore bound CreatedAt when set: at or after CreatedAfter, before
	// CreatedBefore (millisecond precision). Stores walk their created_at order between them.
	CreatedAfter, CreatedBefore time.Time
	// IdempotencyKey, when set, finds the one job holding that key for Tenant; the service
	// answers it with KeyLookup, not the store's List, and applies the other filters with
	// Matches.
	IdempotencyKey string
	// Limit caps the page size; stores treat 0 as 50.
	Limit int
	// Cursor is the opaque cursor a previous page returned.
	Cursor string
}

// Matches reports whether rec passes q's filters (Status, Task, Tenant, Priority, the created
// range and IdempotencyKey); Limit and Cursor play no part.
func (q ListQuery) Matches(rec messages.JobRecord) bool {
	ms := rec.CreatedAt.UnixMilli()
	return (q.Status == "" || rec.Status == q.Status) && (q.Task == "" || rec.Task == q.Task) &&
		(q.Tenant == "" || rec.Tenant == q.Tenant) && (q.Priority == "" || rec.Priority == q.Priority) &&
		(q.CreatedAfter.IsZero() || ms >= q.CreatedAfter.UnixMilli()) &&
		(q.CreatedBefore.IsZero() || ms < q.CreatedBefore.UnixMilli()) &&
		(q.IdempotencyKey == "" || rec.IdempotencyKey == q.IdempotencyKey)
}

// KeyLookup is an optional ability of a JobStore: the job that holds a tenant's idempotency
// key. Intake uses it to answer a retried submission without queueing a spare message.
// Implementations are safe for concurrent use.
type KeyLookup interface {
	// JobByIdempotencyKey returns the job that holds key for tenant, or ErrNotFound when no
	// job holds it (or its holder is not written yet).
	JobByIdempotencyKey(ctx context.Context, tenant, key string) (messages.JobRecord, error)
}

// CancelFinder is an optional ability of a JobStore: which of a set of jobs are CANCELLED, in
// one read by primary key. A worker asks it, every workers.cancel_poll, about every job it runs,
// so that a cancel recorded by any process stops the job wherever it runs. Implementations read
// what every process has written, are safe for concurrent use, and split a long ids list into
// the batches their database takes. A store without it is asked job by job with Get.
type CancelFinder interface {
	// CancelledAmong returns those of ids whose status is CANCELLED, in no particular order.
	// Ids of missing jobs are left out.
	CancelledAmong(ctx context.Context, ids []string) ([]string, error)
}

// Expirer is an optional ability of a JobStore: deleting finished jobs in small batches, for
// retention. The SQLite and PostgreSQL stores have it; DynamoDB expires jobs with its own TTL.
type Expirer interface {
	// DeleteFinishedBefore deletes up to limit jobs whose status is terminal (COMPLETED, FAILED
	// or CANCELLED) and whose UpdatedAt is before before, oldest first, with their idempotency
	// keys, and returns the ids it deleted. Each deletion is atomic with its status check: a job
	// that leaves its terminal status meanwhile (a replay, a redrive) is not deleted. It is safe
	// to call from many goroutines and processes at once: no two calls delete, or return, the
	// same job, and a call skips rows another call holds instead of waiting for them. Fewer
	// than limit ids means nothing more was there for this call to delete.
	DeleteFinishedBefore(ctx context.Context, before time.Time, limit int) ([]string, error)
}
