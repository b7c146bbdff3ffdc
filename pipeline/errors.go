package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/messages"
)

// ErrNotFound is returned by stores when the job or object does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by JobStore.Transition when the job's current status is not one the
// transition may leave; the returned record holds the current state.
var ErrConflict = errors.New("status conflict")

// ErrInvalidCursor is wrapped by JobStore.List when ListQuery.Cursor is not a cursor a
// previous page returned; the API answers it with 400.
var ErrInvalidCursor = errors.New("invalid list cursor (pass back the cursor a previous page returned, or none for the first page)")

// ErrStorageFull is matched (errors.Is) by an error of a store or queue that failed for want of
// space: a full disk, a quota. Adapters wrap it at the border, beside their own error. Intake
// answers it with 503 and a Retry-After saying the disk is full; a worker treats it as an
// infrastructure failure, retried without spending the job's attempts.
var ErrStorageFull = errors.New("no space left to store it (free space on the volume that holds the data; /readyz says which dependency is full)")

// ErrUnavailable wraps failures to reach the queue, the job store or the result store. Intake
// answers it with 503 and leaves nothing half-written.
var ErrUnavailable = errors.New("dependency unavailable (check that the queue and job store are running; see /readyz)")

// PermanentError marks a failure that no retry can fix (invalid job, unknown model, access
// denied): the job fails at once with Code and its message goes to the dead-letter place.
type PermanentError struct {
	Code string
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError with an error code from messages (ErrCode...).
func Permanent(code string, err error) error { return &PermanentError{Code: code, Err: err} }

// RetryAfterError is a retryable failure whose source said when to try again (a Retry-After
// header, a throttling response); the job's next attempt waits at least After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// BlockedError is a guardrail's refusal: the job fails with guardrail_blocked, is not retried,
// and carries the guardrail report.
type BlockedError struct {
	Reason string
	Report *messages.GuardrailReport
}

func (e *BlockedError) Error() string { return "blocked by guardrail: " + e.Reason }

// InfrastructureError is a failure of infleet's own dependencies, not of the model or the job:
// the result store or the job store could not be written (a full disk, a store outage). The
// attempt it cut short is handed back, so it does not count against workers.max_attempts, and
// the delivery is retried after a backoff that grows with the job's infrastructure failures in
// a row; the job is never failed for it.
type InfrastructureError struct {
	// Op names what failed ("store result", "record completion"), for the job's error.
	Op  string
	Err error
}

// Error says what failed and why.
func (e *InfrastructureError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the dependency's error, so errors.Is finds ErrStorageFull and the like.
func (e *InfrastructureError) Unwrap() error { return e.Err }

// Infrastructure wraps err, the failure of op, as an InfrastructureError.
func Infrastructure(op string, err error) error { return &InfrastructureError{Op: op, Err: err} }
