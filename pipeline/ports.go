package pipeline

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/infleet/infleet/messages"
)

// ErrNotFound is returned by stores when the job or object does not exist.
var ErrNotFound = errors.New("not found")

// ErrStorageFull is matched (errors.Is) by an error of a store or queue that failed for want of
// space: a full disk, a quota. Adapters wrap it at the border, beside their own error. Intake
// answers it with 503 and a Retry-After saying the disk is full; a worker treats it as an
// infrastructure failure, retried without spending the job's attempts.
var ErrStorageFull = errors.New("no space left to store it (free space on the volume that holds the data; /readyz says which dependency is full)")

// ErrConflict is returned by JobStore.Transition when the job's current status is not one the
// transition may leave; the returned record holds the current state.
var ErrConflict = errors.New("status conflict")

// ErrInvalidCursor is wrapped by JobStore.List when ListQuery.Cursor is not a cursor a
// previous page returned; the API answers it with 400.
var ErrInvalidCursor = errors.New("invalid list cursor (pass back the cursor a previous page returned, or none for the first page)")

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
	// Call, when set, replaces how the model layer answered (degraded, fallbacks, prompt).
	Call *ModelCall
	// Error replaces the stored error when set; a transition to QUEUED or COMPLETED clears it
	// when nil.
	Error *messages.JobError
	// At is the update time; zero means now.
	At time.Time
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
		rec.Degraded, rec.Fallbacks, rec.Prompt = t.Call.Degraded, t.Call.Fallbacks, t.Call.Prompt
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

// ModelCall is how the model layer answered a job, as a JobRecord keeps it.
type ModelCall struct {
	Degraded  bool     `json:"degraded,omitempty"`
	Fallbacks []string `json:"fallbacks,omitempty"`
	Prompt    string   `json:"prompt,omitempty"`
}

// ModelCallOf returns what rec records of its model call, or nil when there is nothing.
func ModelCallOf(rec messages.JobRecord) *ModelCall {
	if !rec.Degraded && len(rec.Fallbacks) == 0 && rec.Prompt == "" {
		return nil
	}
	return &ModelCall{Degraded: rec.Degraded, Fallbacks: rec.Fallbacks, Prompt: rec.Prompt}
}

// ListQuery selects jobs for JobStore.List.
type ListQuery struct {
	// Status and Task filter when set.
	Status messages.Status
	Task   string
	// Tenant scopes the list when set (an operator lists with it empty).
	Tenant string
	// Limit caps the page size; stores treat 0 as 50.
	Limit int
	// Cursor is the opaque cursor a previous page returned.
	Cursor string
}

// BlobStore keeps result objects. Put overwrites, so writing a job's result twice leaves one
// object; implementations are safe for concurrent use.
type BlobStore interface {
	// Put stores data under key, replacing what was there; readers never see a partial object.
	Put(ctx context.Context, key string, data []byte) error
	// Get opens the object under key, or returns ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// Model is a configured model: the name jobs and routes use, the provider's model id and the
// client that reaches it.
type Model struct {
	Name    string
	ModelID string
	Client  ModelClient
}

// ModelPicker chooses the model for a job. Implementations are safe for concurrent use; a
// reloadable one may change its answer between calls.
type ModelPicker interface {
	// Pick returns the model to call for job; an error is a PermanentError when no model can
	// serve it.
	Pick(job *messages.Job) (Model, error)
}

// RouteDefault is the route key used for tasks with no route of their own.
const RouteDefault = "default"

// ModelRequest is one call to a model.
type ModelRequest struct {
	// ModelID is the provider's model identifier.
	ModelID string
	// Task is the job's task, for providers (such as sim) whose output depends on it.
	Task     string
	System   string
	Messages []messages.ChatMessage
	Params   messages.Params
	// Tenant is the job's tenant ("" when auth is off), for spend figures and tenant budgets;
	// providers ignore it.
	Tenant string
}

// ModelResponse is a model's answer.
type ModelResponse struct {
	Text       string
	Usage      messages.Usage
	StopReason string
	// Model names the configured model that answered when it is not the one called (a
	// fallback answered); empty means the model called.
	Model string
	// Degraded is true when no model could answer and Text is a configured degradation message.
	Degraded bool
	// Fallbacks lists the models tried, in order, before the one that answered.
	Fallbacks []string
	// Prompt is the prompt template that built the request, as name@version; empty for none.
	Prompt string
}

// ModelClient calls one model. Implementations are safe for concurrent use and honour ctx's
// deadline and cancellation.
type ModelClient interface {
	Invoke(ctx context.Context, req ModelRequest) (ModelResponse, error)
}

// Notification is a lifecycle event with where the job asked it to go.
type Notification struct {
	Event messages.Event
	// CallbackURL is the job's own callback_url, which overrides a configured webhook URL.
	CallbackURL string
}

// Notifier delivers lifecycle events. Notify returns once the event is delivered or handed to
// a durable retry path; an error means the event was not delivered and will not be retried.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// Checker is an optional ability of a dependency: Check reports whether it is reachable, for
// /readyz.
type Checker interface {
	Check(ctx context.Context) error
}

// GuardStage says which side of the model a guard check runs on.
type GuardStage string

// The two guard stages.
const (
	GuardInput  GuardStage = "input"
	GuardOutput GuardStage = "output"
)

// GuardOutcome is what a guard decided about some texts.
type GuardOutcome struct {
	// Texts are the inputs, anonymized where a policy said so, in the same order.
	Texts []string
	// Blocked is true when a policy blocks the job; Reason says which, for the job's error.
	Blocked bool
	Reason  string
	// Assessments lists what each policy found and did.
	Assessments []messages.Assessment
	// Restore, when set by an input check, puts back the values that check anonymized: the
	// worker applies it to the model's answer after the output guard, before the result is
	// stored. Guards set it only when configured to; by default nothing masked is restored.
	Restore func(string) string
}

// Guard checks texts before (input) or after (output) the model. Implementations are safe for
// concurrent use. A pipeline with no guard configured passes texts through unchanged.
type Guard interface {
	Check(ctx context.Context, stage GuardStage, texts []string) (GuardOutcome, error)
}

// GuardContext is what a guard may know of the job beyond the texts it checks.
type GuardContext struct {
	// JobID is for the guard's logs.
	JobID string
	// Question is the job's last user message as the model received it (after the input guard).
	Question string
	// Context is the job's reference text (job.context) as the model received it, for
	// contextual grounding of the output.
	Context string
}

// ContextGuard is an optional ability of a Guard: a check that also sees the job's context.
// The worker calls CheckWithContext instead of Check when its guard has it.
type ContextGuard interface {
	CheckWithContext(ctx context.Context, stage GuardStage, texts []string, jc GuardContext) (GuardOutcome, error)
}

// KeyLookup is an optional ability of a JobStore: the job that holds a tenant's idempotency
// key. Intake uses it to answer a retried submission without queueing a spare message.
// Implementations are safe for concurrent use.
type KeyLookup interface {
	// JobByIdempotencyKey returns the job that holds key for tenant, or ErrNotFound when no
	// job holds it (or its holder is not written yet).
	JobByIdempotencyKey(ctx context.Context, tenant, key string) (messages.JobRecord, error)
}
