package pipeline

import (
	"context"
	"fmt"
	"time"

	"github.com/infleet/infleet/messages"
)

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
	// BatchJob is the batch inference job (its ARN) whose output record this answer is;
	// empty for an on-demand call.
	BatchJob string
	// Batch is where the job stands in batch inference, for an answer from an output record.
	Batch *messages.BatchInference
}

// ModelClient calls one model. Implementations are safe for concurrent use and honour ctx's
// deadline and cancellation.
type ModelClient interface {
	Invoke(ctx context.Context, req ModelRequest) (ModelResponse, error)
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
