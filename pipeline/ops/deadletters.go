package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// DeadLetter is a message kept in the dead-letter place, with why it is there.
type DeadLetter struct {
	// ID is the transport's id of the kept message (a stream sequence, a receipt, an offset).
	ID       string            `json:"id"`
	JobID    string            `json:"job_id"`
	Task     string            `json:"task,omitempty"`
	Attempts int               `json:"attempts"`
	Code     string            `json:"code"`
	Reason   string            `json:"reason"`
	DeadAt   time.Time         `json:"dead_at"`
	Payload  []byte            `json:"-"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// DeadLetterFromMessage reads a kept message's metadata into a DeadLetter.
func DeadLetterFromMessage(id string, payload []byte, md map[string]string) DeadLetter {
	dl := DeadLetter{ID: id, JobID: md[messages.MetaJobID], Task: md[pipeline.MetaTask], Code: md[pipeline.MetaDeadCode],
		Reason: md[messages.MetaDeadReason], Payload: payload, Metadata: md}
	dl.Attempts, _ = strconv.Atoi(md[messages.MetaAttempts])
	dl.DeadAt, _ = time.Parse(time.RFC3339Nano, md[pipeline.MetaDeadAt])
	if dl.Code == "" {
		dl.Code, _, _ = strings.Cut(dl.Reason, ":")
	}
	return dl
}

// DeadLetterFilter selects dead letters. Empty fields match everything.
type DeadLetterFilter struct {
	JobIDs []string
	Task   string
	// Reason matches a substring of the error code or reason.
	Reason string
	Since  time.Time
	// Tenant scopes to one tenant's jobs (empty: all, for operators).
	Tenant string
	// Limit caps how many are returned (0: no cap).
	Limit int
}

func (f DeadLetterFilter) match(dl DeadLetter) bool {
	if len(f.JobIDs) > 0 && !contains(f.JobIDs, dl.JobID) {
		return false
	}
	if f.Task != "" && dl.Task != f.Task {
		return false
	}
	if f.Reason != "" && !strings.Contains(dl.Code, f.Reason) && !strings.Contains(dl.Reason, f.Reason) {
		return false
	}
	if !f.Since.IsZero() && dl.DeadAt.Before(f.Since) {
		return false
	}
	if f.Tenant != "" && dl.Metadata[messages.MetaTenant] != f.Tenant {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// RedriveResult counts what a redrive did.
type RedriveResult struct {
	Matched  int `json:"matched"`
	Redriven int `json:"redriven"`
	// Skipped dead letters were removed without queueing: their job is queued, running or
	// finished again already, so queueing it would duplicate it.
	Skipped int `json:"skipped"`
	// Kept dead letters stay: they never became a job (not JSON, schema-invalid).
	Kept int `json:"kept"`
}

// DeadLetters returns the dead letters matching f, oldest first.
func (o *Operator) DeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error) {
	var out []DeadLetter
	err := o.cfg.Box.ScanDeadLetters(ctx, o.cfg.Topics.Dead, func(id string, payload []byte, md map[string]string) bool {
		dl := DeadLetterFromMessage(id, payload, md)
		if f.match(dl) {
			out = append(out, dl)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// DeadLetter returns the newest dead letter of a job, or pipeline.ErrNotFound.
func (o *Operator) DeadLetter(ctx context.Context, jobID, tenant string) (DeadLetter, error) {
	dls, err := o.DeadLetters(ctx, DeadLetterFilter{JobIDs: []string{jobID}, Tenant: tenant})
	if err != nil {
		return DeadLetter{}, err
	}
	if len(dls) == 0 {
		return DeadLetter{}, pipeline.ErrNotFound
	}
	return dls[len(dls)-1], nil
}

// Redrive sends the dead letters matching f back to their priority's queue with the job's
// attempts reset and its status back to QUEUED. It is idempotent: a job that is already
// queued, running or finished again is not queued twice, and its dead letter is removed.
func (o *Operator) Redrive(ctx context.Context, f DeadLetterFilter) (RedriveResult, error) {
	dls, err := o.DeadLetters(ctx, f)
	if err != nil {
		return RedriveResult{}, err
	}
	res := RedriveResult{Matched: len(dls)}
	for _, dl := range dls {
		outcome, err := o.redriveOne(ctx, dl)
		if err != nil {
			return res, err
		}
		switch outcome {
		case "redriven":
			res.Redriven++
		case "skipped":
			res.Skipped++
		default:
			res.Kept++
		}
	}
	o.cfg.Metrics.Redriven(res.Redriven)
	return res, nil
}

func (o *Operator) redriveOne(ctx context.Context, dl DeadLetter) (string, error) {
	if dl.JobID == "" {
		return "kept", nil
	}
	rec, err := o.cfg.Store.Transition(ctx, dl.JobID, pipeline.Transition{
		From:          []messages.Status{messages.StatusFailed},
		To:            messages.StatusQueued,
		ResetAttempts: true,
	})
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		return "kept", nil
	case errors.Is(err, pipeline.ErrConflict):
		// Queued, running or finished again: the dead letter is stale.
		return "skipped", o.cfg.Box.RemoveDeadLetter(ctx, o.cfg.Topics.Dead, dl.ID)
	case err != nil:
		return "", fmt.Errorf("redrive %s: %w", dl.JobID, err)
	}
	msg := message.NewMessage(pipeline.NewJobID(), dl.Payload)
	for k, v := range dl.Metadata {
		switch k {
		case messages.MetaDeadReason, messages.MetaAttempts, pipeline.MetaDeadCode, pipeline.MetaDeadAt, messages.MetaNackDelay:
		default:
			msg.Metadata.Set(k, v)
		}
	}
	if err := o.cfg.Publisher.Publish(o.cfg.Topics.For(rec.Priority), msg); err != nil {
		// Put the job back as it was so a later redrive finds it again.
		_, _ = o.cfg.Store.Transition(context.WithoutCancel(ctx), dl.JobID, pipeline.Transition{
			From: []messages.Status{messages.StatusQueued}, To: messages.StatusFailed,
			Error: &messages.JobError{Code: dl.Code, Message: dl.Reason},
		})
		return "", fmt.Errorf("redrive %s: queue: %w: %w", dl.JobID, pipeline.ErrUnavailable, err)
	}
	o.cfg.Hub.Notify(dl.JobID)
	o.cfg.Logger.Info().Str("job_id", dl.JobID).Str("dead_letter_id", dl.ID).Msg("dead letter redriven")
	return "redriven", o.cfg.Box.RemoveDeadLetter(ctx, o.cfg.Topics.Dead, dl.ID)
}
