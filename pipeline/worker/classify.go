package worker

import (
	"errors"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

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
	// throttled says the model throttled the call: the provider asked to slow down, which is
	// not the job's failure, so the retry spends no attempt (within MaxThrottledWait).
	throttled bool
}

// classify turns a stage error into the job error it records, whether a retry may help and
// whether the attempt counts. It is the one place job outcomes are decided from error types.
func classify(err error) verdict {
	var perm *pipeline.PermanentError
	var blocked *pipeline.BlockedError
	var infra *pipeline.InfrastructureError
	var ra *pipeline.RetryAfterError
	var me *pipeline.ModelError
	switch {
	case errors.As(err, &blocked):
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeGuardrailBlocked, Message: blocked.Error()}}
	case errors.As(err, &infra):
		msg := err.Error()
		if errors.Is(err, pipeline.ErrStorageFull) {
			msg += " (the job waits and is retried, without spending an attempt, once space is freed)"
		}
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeInfrastructure, Message: msg}, retry: true, infrastructure: true}
	case errors.As(err, &perm):
		return verdict{jobErr: messages.JobError{Code: perm.Code, Message: perm.Error()}}
	case errors.As(err, &ra):
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, retry: true, after: ra.After}
	case errors.As(err, &me):
		return verdict{jobErr: messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, retry: me.Kind.Retryable(), after: me.RetryAfter,
			throttled: me.Kind == pipeline.ModelThrottled}
	}
	return verdict{jobErr: messages.JobError{Code: messages.ErrCodeModelError, Message: err.Error()}, retry: true}
}
