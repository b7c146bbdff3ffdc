// Package messages holds infleet's wire types: the job a producer submits, the job record an
// operator polls, the result a worker stores and the lifecycle event it emits. It is a leaf
// package: it imports nothing of infleet's, and every other package speaks these types.
package messages

import (
	"encoding/json"
	"time"
)

// Priority is a job's scheduling class. The zero value means PriorityNormal.
type Priority string

// The three priorities, each with its own queue, stream or topic.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Priorities lists every priority, highest first.
var Priorities = []Priority{PriorityHigh, PriorityNormal, PriorityLow}

// Valid reports whether p is one of the three priorities.
func (p Priority) Valid() bool {
	return p == PriorityHigh || p == PriorityNormal || p == PriorityLow
}

// OrNormal returns p, or PriorityNormal when p is empty.
func (p Priority) OrNormal() Priority {
	if p == "" {
		return PriorityNormal
	}
	return p
}

// Status is where a job stands in its lifecycle.
type Status string

// Job statuses. QUEUED and PROCESSING are live; the other three are terminal.
const (
	StatusQueued     Status = "QUEUED"
	StatusProcessing Status = "PROCESSING"
	StatusCompleted  Status = "COMPLETED"
	StatusFailed     Status = "FAILED"
	StatusCancelled  Status = "CANCELLED"
)

// Terminal reports whether s is a final status that no transition leaves.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Valid reports whether s is one of the five statuses.
func (s Status) Valid() bool {
	return s.Terminal() || s == StatusQueued || s == StatusProcessing
}

// ChatMessage is one turn of a conversation given as job input.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Input is what the model works on: exactly one of Text, Messages or S3URI is set.
type Input struct {
	Text     string        `json:"text,omitempty"`
	Messages []ChatMessage `json:"messages,omitempty"`
	S3URI    string        `json:"s3_uri,omitempty"`
}

// Params are inference parameters passed to the model. Nil pointers mean the model's default.
type Params struct {
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	Stop        []string `json:"stop,omitempty"`
}

// Job is the body of POST /v1/jobs and, with JobID set, the body of a job message on a queue.
type Job struct {
	JobID          string          `json:"job_id,omitempty"`
	Task           string          `json:"task"`
	Input          Input           `json:"input"`
	Model          string          `json:"model,omitempty"`
	Params         *Params         `json:"params,omitempty"`
	Priority       Priority        `json:"priority,omitempty"`
	CallbackURL    string          `json:"callback_url,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	// ReplayName is set on messages re-published by a replay; a worker re-runs such a job even
	// when it already ended.
	ReplayName string `json:"replay_name,omitempty"`
	// Context is reference text the model answers from: it is checked by the input guardrails,
	// sent as the system prompt, and the answer's contextual grounding is scored against it.
	Context string `json:"context,omitempty"`
	// Stream asks for the answer as it is generated: the worker calls the model's streaming
	// API and publishes the text on the job's event stream (GET /v1/jobs/{id}/events, "delta"
	// events). The stored result is the whole answer either way.
	Stream bool `json:"stream,omitempty"`
	// Body is the JSON text the job was decoded from — a queue message's payload, or the part
	// of an envelope that held the job — when its decoder keeps it (a worker's does); it is
	// never encoded. An archive keeps it as the job's request instead of encoding the job
	// again. It may lack what the decoder took from the message's metadata (job_id, priority,
	// replay_name); a replay sets those from the archive entry.
	Body json.RawMessage `json:"-"`
}

// Usage counts the tokens a model call consumed.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	// CostUSD is the estimated price of the tokens in US dollars, from the configured price
	// table; 0 when the model has no price.
	CostUSD float64 `json:"cost_usd,omitempty"`
}

// Add returns the sum of u and o.
func (u Usage) Add(o Usage) Usage {
	return Usage{InputTokens: u.InputTokens + o.InputTokens, OutputTokens: u.OutputTokens + o.OutputTokens, CostUSD: u.CostUSD + o.CostUSD}
}

// JobError says why a job failed: a stable machine-readable code and a message for people.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// History lists the job's failed attempts, oldest first (at most MaxAttemptHistory, the
	// latest kept).
	History []AttemptError `json:"history,omitempty"`
}

// MaxAttemptHistory caps JobError.History.
const MaxAttemptHistory = 20

// AttemptError is one failed attempt of a job.
type AttemptError struct {
	// Attempt is the attempt's number, from 1 (it starts again after a redrive).
	Attempt int       `json:"attempt"`
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Model   string    `json:"model,omitempty"`
	At      time.Time `json:"at"`
}

// Error codes a failed job can carry.
const (
	ErrCodeGuardrailBlocked = "guardrail_blocked"
	ErrCodeModelError       = "model_error"
	ErrCodeInvalidJob       = "invalid_job"
	ErrCodeAttemptsExceeded = "attempts_exhausted"
	ErrCodeNoModel          = "no_model"
	ErrCodeInternal         = "internal"
	// ErrCodeInfrastructure says infleet's own dependencies failed the attempt, not the model
	// or the job: the result store or the job store could not be written (a full disk, an
	// outage). Such an attempt is not counted against the job's attempts; a QUEUED job carries
	// the code while it waits for them to come back.
	ErrCodeInfrastructure = "infrastructure_error"
)

// Assessment is what one guardrail policy found and did, shaped like an Amazon Bedrock
// ApplyGuardrail assessment.
type Assessment struct {
	Policy  string `json:"policy"`
	Type    string `json:"type"`
	Matches int    `json:"matches"`
	Action  string `json:"action"`
}

// Guardrail actions, as reported in GuardrailReport.Action and Assessment.Action.
const (
	GuardActionNone       = "NONE"
	GuardActionAnonymized = "ANONYMIZED"
	GuardActionBlocked    = "BLOCKED"
)

// GuardrailReport records every guardrail intervention on a job's input and output.
type GuardrailReport struct {
	Action string       `json:"action"`
	Input  []Assessment `json:"input,omitempty"`
	Output []Assessment `json:"output,omitempty"`
}

// JobRecord is a job as the store keeps it and GET /v1/jobs/{id} returns it. Fields tagged "-"
// are internal: the store keeps them but the API does not show them.
type JobRecord struct {
	JobID     string           `json:"job_id"`
	Status    Status           `json:"status"`
	Task      string           `json:"task"`
	Priority  Priority         `json:"priority"`
	Model     string           `json:"model,omitempty"`
	Attempts  int              `json:"attempts"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	Usage     *Usage           `json:"usage,omitempty"`
	Guardrail *GuardrailReport `json:"guardrail,omitempty"`
	Error     *JobError        `json:"error,omitempty"`
	ResultURL string           `json:"result_url,omitempty"`
	// ReplayName is the last replay that ran this job, if any.
	ReplayName string `json:"replay_name,omitempty"`
	// Degraded, Fallbacks and Prompt say how the model layer answered, as on the result.
	Degraded  bool     `json:"degraded,omitempty"`
	Fallbacks []string `json:"fallbacks,omitempty"`
	Prompt    string   `json:"prompt,omitempty"`
	// BatchJob is the batch inference job (its ARN) that holds, or answered, the job; empty
	// for a job called on demand.
	BatchJob string `json:"batch_job,omitempty"`
	// BatchInference says where a job sent to batch inference stands: RUNNING while its batch
	// is out (the job's Status stays PROCESSING, as the API's statuses are fixed), then how it
	// ended. Nil for a job never held by a batch inference job.
	BatchInference *BatchInference `json:"batch_inference,omitempty"`

	// StreamFrom is the base URL of the process streaming the answer of a job that asked for
	// streaming, while an attempt runs there; the API relays the job's deltas from it. Kept
	// with the model call; not part of the API.
	StreamFrom string `json:"-"`

	Tenant         string `json:"-"`
	IdempotencyKey string `json:"-"`
	// Spec is the job message body (a Job in JSON) as it was accepted.
	Spec json.RawMessage `json:"-"`
}

// States of a job in batch inference (BatchInference.State).
const (
	// BatchRunning: the job waits in a batch inference job that has not ended, or whose
	// output is being read.
	BatchRunning = "RUNNING"
	// BatchAnswered: the job's output record answered it.
	BatchAnswered = "ANSWERED"
	// BatchOnDemand: the job's record failed, or its whole batch job did, and it was sent to
	// an on-demand call instead.
	BatchOnDemand = "ON_DEMAND"
)

// BatchInference is where a job held by a provider's batch inference job stands, as
// GET /v1/jobs/{id} shows it.
type BatchInference struct {
	// State is BatchRunning, BatchAnswered or BatchOnDemand.
	State string `json:"state"`
	// BatchID is infleet's batch; JobARN the provider's batch job (Bedrock's model invocation
	// job), once created.
	BatchID string `json:"batch_id,omitempty"`
	JobARN  string `json:"job_arn,omitempty"`
	// Status is the provider job's last status as the reconciler saw it (Bedrock's
	// Submitted, Validating, Scheduled, InProgress, Completed, PartiallyCompleted, Failed,
	// Stopped, Expired).
	Status string `json:"status,omitempty"`
}

// Output is what a model produced for a job.
type Output struct {
	Text string `json:"text"`
}

// Result is the stored outcome of a completed job: the body of GET /v1/jobs/{id}/result and of
// the result object.
type Result struct {
	JobID     string           `json:"job_id"`
	Output    Output           `json:"output"`
	Model     string           `json:"model"`
	Usage     Usage            `json:"usage"`
	Guardrail *GuardrailReport `json:"guardrail,omitempty"`
	// Degraded is true when no model could answer and Output is the configured degradation
	// message.
	Degraded bool `json:"degraded,omitempty"`
	// Fallbacks lists the models tried, in order, before the one that answered.
	Fallbacks []string `json:"fallbacks,omitempty"`
	// Prompt is the prompt template that built the request, as name@version.
	Prompt string `json:"prompt,omitempty"`
}

// Event types, one per terminal status (job.status for non-terminal changes when enabled).
const (
	EventCompleted = "job.completed"
	EventFailed    = "job.failed"
	EventCancelled = "job.cancelled"
	EventStatus    = "job.status"
)

// EventTypeFor returns the event type announcing status s.
func EventTypeFor(s Status) string {
	switch s {
	case StatusCompleted:
		return EventCompleted
	case StatusFailed:
		return EventFailed
	case StatusCancelled:
		return EventCancelled
	}
	return EventStatus
}

// Event is a lifecycle event delivered to webhooks, SNS, EventBridge, Kafka or NATS.
type Event struct {
	// ID identifies the event: every delivery of one event carries the same ID, so a receiver
	// that sees an ID twice has the same event twice (delivery is at least once). Empty only
	// for events sent without an outbox.
	ID         string    `json:"id,omitempty"`
	Type       string    `json:"type"`
	JobID      string    `json:"job_id"`
	Status     Status    `json:"status"`
	Task       string    `json:"task"`
	Tenant     string    `json:"tenant,omitempty"`
	ResultURL  string    `json:"result_url,omitempty"`
	Error      *JobError `json:"error,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
}

// EventFor builds the event announcing rec's current status at time at.
func EventFor(rec JobRecord, at time.Time) Event {
	return Event{
		Type:       EventTypeFor(rec.Status),
		JobID:      rec.JobID,
		Status:     rec.Status,
		Task:       rec.Task,
		Tenant:     rec.Tenant,
		ResultURL:  rec.ResultURL,
		Error:      rec.Error,
		OccurredAt: at.UTC(),
	}
}

// Transport metadata keys carried beside a job message (SQS attributes, Kafka and NATS headers).
const (
	MetaJobID       = "job_id"
	MetaPriority    = "priority"
	MetaTenant      = "tenant"
	MetaTraceparent = "traceparent"
	// MetaPublishedAt is when intake published the message (RFC 3339 with nanoseconds, UTC):
	// a worker's trace shows the time from it to the worker taking the message as its queue
	// wait. Producers may leave it out.
	MetaPublishedAt = "published_at"
	MetaReplayName  = "replay_name"
	// MetaDeadReason is set on a dead-lettered message: why it was dead-lettered.
	MetaDeadReason = "dead_reason"
	// MetaAttempts is set on a dead-lettered message: attempts spent.
	MetaAttempts = "attempts"
	// MetaNackDelay, set by a handler on a message before it nacks it, asks the transport to
	// redeliver no sooner than this Go duration. Transports that cannot delay ignore it.
	MetaNackDelay = "infleet_nack_delay"
	// MetaDeliveryCount is set on a delivered message by a transport that counts deliveries
	// (JetStream's NumDelivered, SQS's ApproximateReceiveCount): "1" on the message's first
	// delivery. Transports that cannot count (Kafka) drop a producer's value, so "1" is never
	// taken on a producer's word.
	MetaDeliveryCount = "delivery_count"
)

// ResultPath returns the API path of a job's result.
func ResultPath(jobID string) string { return "/v1/jobs/" + jobID + "/result" }

// JobPath returns the API path of a job.
func JobPath(jobID string) string { return "/v1/jobs/" + jobID }

// NackDelay reads the redelivery delay a handler put in a message's metadata under
// MetaNackDelay: 0 when there is none. ok is false when the value is not a non-negative Go
// duration; transports then redeliver at once and log the value.
func NackDelay(md map[string]string) (d time.Duration, ok bool) {
	v := md[MetaNackDelay]
	if v == "" {
		return 0, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}
