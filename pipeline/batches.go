package pipeline

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// BatchState is where a batch inference batch stands in infleet's hands (the provider's own
// status is Batch.Status).
type BatchState string

// Batch states, in the order a batch goes through them.
const (
	// BatchSubmitting: the batch and its jobs are recorded and its input written; the
	// provider's job may not exist yet (creating it again with the batch id as the client
	// token is safe).
	BatchSubmitting BatchState = "SUBMITTING"
	// BatchSubmitted: the provider's job exists (Batch.ARN) and is followed until it ends.
	BatchSubmitted BatchState = "SUBMITTED"
	// BatchEnded: the provider's job ended (Batch.Status says how); its jobs are being
	// completed from their output records or sent to on-demand calls.
	BatchEnded BatchState = "ENDED"
	// BatchDone: every job of the batch reached a terminal status.
	BatchDone BatchState = "DONE"
)

// Batch is one batch inference batch as the job store keeps it: what a worker process needs
// to follow it after another process, or itself before a restart, created it.
type Batch struct {
	ID string
	// Model is the configured model name; ModelID the provider's model id.
	Model, ModelID string
	// JobIDs are the jobs whose records the batch holds, in record order; the record id of a
	// job is its job id.
	JobIDs []string
	// InputURI is the JSONL input (s3://bucket/key); OutputURI the prefix the provider writes
	// its output under.
	InputURI, OutputURI string
	// ARN is the provider's job, once created.
	ARN   string
	State BatchState
	// Status is the provider's last reported status (Submitted, InProgress, Completed...).
	Status string
	// Owner is the process that follows the batch until LeaseUntil.
	Owner      string
	LeaseUntil time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// BatchStore is an optional ability of a JobStore: the state of batch inference batches, kept
// where the jobs are so that no job is lost or run twice across a restart. Implementations are
// safe for concurrent use by many goroutines and processes; times are kept at millisecond
// precision.
type BatchStore interface {
	// CreateBatch records b (in state b.State, leased to b.Owner until b.LeaseUntil) and
	// makes each of its jobs belong to it, atomically: when the id is taken or any job
	// already belongs to a batch it records nothing and returns an error wrapping
	// ErrConflict.
	CreateBatch(ctx context.Context, b Batch) error
	// GetBatch returns the batch with that id, or an error wrapping ErrNotFound.
	GetBatch(ctx context.Context, id string) (Batch, error)
	// BatchOfJob returns the id of the batch the job belongs to, or an error wrapping
	// ErrNotFound when it belongs to none.
	BatchOfJob(ctx context.Context, jobID string) (string, error)
	// UpdateBatch writes b's ARN, State, Status, LeaseUntil and UpdatedAt when the stored
	// batch is leased to b.Owner (its lease may have run out, as long as no other owner has
	// taken it since); otherwise it writes nothing and returns an error wrapping ErrConflict.
	// A missing batch is ErrNotFound.
	UpdateBatch(ctx context.Context, b Batch) error
	// ClaimBatches leases to owner, until until, up to limit batches not DONE whose lease has
	// run out at now or is owner's already, oldest first, and returns them as leased. Two
	// concurrent claims never both take one batch.
	ClaimBatches(ctx context.Context, owner string, now, until time.Time, limit int) ([]Batch, error)
}

// SortBatches orders bs oldest first (CreatedAt, then ID), as ClaimBatches returns them.
func SortBatches(bs []Batch) {
	slices.SortFunc(bs, func(a, b Batch) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}
