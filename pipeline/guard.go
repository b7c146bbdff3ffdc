package pipeline

import (
	"context"

	"github.com/infleet/infleet/messages"
)

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
