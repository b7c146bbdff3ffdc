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

// classify turns a stage error into the job error it records and whether a retry may help.
// It is the one place job outcomes are decided from error types.
func classify(err error) (jobErr messages.JobError, retryable bool, after time.Duration) {
	var perm *PermanentError
	var blocked *BlockedError
	var ra *RetryAfterError
	var me *ModelError
	switch {
	case errors.As(err, &blocked):
		return messages.JobError{Code: messages.ErrCodeGuardrailBlocked, Message: blocked.Error()}, false, 0
	case errors.As(err, &perm):
		return messages.JobError{Code: perm.Code, Message: perm.Error()}, false, 0
	case errors.As(err, &ra):
		return messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, true, ra.After
	case errors.As(err, &me):
		return messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, me.Kind.Retryable(), me.RetryAfter
	}
	return messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, true, 0
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
