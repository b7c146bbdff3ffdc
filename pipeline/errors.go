package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/messages"
)

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

// verdict is what classify decided about a failed attempt.
type verdict struct {
	// jobErr is the error the job records.
	jobErr messages.JobError
	// retry says another attempt may succeed; after is the least wait before it.
	retry bool
	after time.Duration
	// infrastructure says infleet's own dependencies failed the attempt: it is handed back
	// uncounted and retried, however many attempts the job has spent.
	infrastructure bool
}

// classify turns a stage error into the job error it records, whether a retry may help and
// whether the attempt counts. It is the one place job outcomes are decided from error types.
func classify(err error) verdict {
	var perm *PermanentError
	var blocked *BlockedError
	var infra *InfrastructureError
	var ra *RetryAfterError
	var me *ModelError
	switch {
	case errors.As(err, &blocked):
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeGuardrailBlocked, Message: blocked.Error()}}
	case errors.As(err, &infra):
		msg := err.Error()
		if errors.Is(err, ErrStorageFull) {
			msg += " (the job waits and is retried, without spending an attempt, once space is freed)"
		}
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeInfrastructure, Message: msg}, retry: true, infrastructure: true}
	case errors.As(err, &perm):
		return verdict{jobErr: messages.JobError{Code: perm.Code, Message: perm.Error()}}
	case errors.As(err, &ra):
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, retry: true, after: ra.After}
	case errors.As(err, &me):
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, retry: me.Kind.Retryable(), after: me.RetryAfter}
	}
	return verdict{jobErr: messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, retry: true}
}

// ModelErrorKind classifies a failed model call, provider-neutrally. Provider adapters map
// their errors to it at the border; the resilience layer decides retries, circuit breaking and
// fallbacks from it alone.
type ModelErrorKind string

// Model error kinds.
const (
	// ModelThrottled: 429, ThrottlingException, rate or quota limits. Retryable; honours RetryAfter.
	ModelThrottled ModelErrorKind = "throttled"
	// ModelUnavailable: 5xx, ServiceUnavailable, connection refused or reset. Retryable.
	ModelUnavailable ModelErrorKind = "unavailable"
	// ModelTimeout: the call or the model timed out (ModelTimeoutException). Retryable.
	ModelTimeout ModelErrorKind = "timeout"
	// ModelNotReady: ModelNotReadyException, a model still loading. Retryable.
	ModelNotReady ModelErrorKind = "not_ready"
	// ModelContextOverflow: the input is longer than the model's context window. Not retryable
	// on the same model; a routing matter (fall back to a larger-context model).
	ModelContextOverflow ModelErrorKind = "context_overflow"
	// ModelInvalidRequest: validation errors (400). Not retryable.
	ModelInvalidRequest ModelErrorKind = "invalid_request"
	// ModelAccessDenied: bad credentials or no access to the model (401/403). Not retryable.
	ModelAccessDenied ModelErrorKind = "access_denied"
	// ModelNotFound: no such model or endpoint (404). Not retryable.
	ModelNotFound ModelErrorKind = "not_found"
)

// Retryable reports whether calling the same model again may succeed.
func (k ModelErrorKind) Retryable() bool {
	switch k {
	case ModelThrottled, ModelUnavailable, ModelTimeout, ModelNotReady:
		return true
	}
	return false
}

// ModelError is a failed model call as a provider adapter reports it.
type ModelError struct {
	Kind ModelErrorKind
	// Status is the provider's HTTP status, when there was one.
	Status int
	// RetryAfter is the wait the provider asked for (Retry-After, x-amz-retry-after); 0 if none.
	RetryAfter time.Duration
	Err        error
}

func (e *ModelError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("model call failed (%s, status %d): %v", e.Kind, e.Status, e.Err)
	}
	return fmt.Sprintf("model call failed (%s): %v", e.Kind, e.Err)
}
func (e *ModelError) Unwrap() error { return e.Err }
