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
	switch {
	case errors.As(err, &blocked):
		return messages.JobError{Code: messages.ErrCodeGuardrailBlocked, Message: blocked.Error()}, false, 0
	case errors.As(err, &perm):
		return messages.JobError{Code: perm.Code, Message: perm.Error()}, false, 0
	case errors.As(err, &ra):
		return messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, true, ra.After
	}
	return messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, true, 0
}
