package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
)

// admit makes sure the job has a record and claims it for this attempt. run is false when the
// delivery must be dropped: the job already ended (a duplicate) or was cancelled. The claim
// counts an attempt, unless one is owed back to the job (an attempt cut short by an
// infrastructure failure that could not be handed back): this delivery then takes its place.
//
// On a first delivery the claim may be deferred (Config.ClaimAfter): then the record is read,
// not written, and claim is the write to make later; it is nil when the claim is recorded.
func (w *Worker) admit(ctx context.Context, job *messages.Job, d Delivery) (_ messages.JobRecord, run bool, claim *deferredClaim, _ error) {
	delta := 1
	if w.ledger.owes(job.JobID) {
		delta = 0
	}
	start := pipeline.Transition{
		From:          []messages.Status{messages.StatusQueued, messages.StatusProcessing},
		To:            messages.StatusProcessing,
		AttemptsDelta: delta,
	}
	if job.Stream && w.cfg.StreamFrom != "" {
		// Where the API relays this attempt's deltas from, recorded with the claim itself.
		start.Call = &pipeline.ModelCall{StreamFrom: w.cfg.StreamFrom}
	}
	if w.mayDefer(job, d) {
		rec, later, ok, err := w.deferClaim(ctx, job, d, start)
		if err != nil {
			return messages.JobRecord{}, false, nil, err
		}
		if ok {
			return rec, true, later, nil
		}
	}
	rec, err := w.cfg.Store.Transition(ctx, job.JobID, start)
	if errors.Is(err, pipeline.ErrNotFound) {
		// A producer dropped the message straight on the queue: create its record.
		created, cerr := w.createRecord(ctx, job, d)
		if cerr != nil {
			return messages.JobRecord{}, false, nil, cerr
		}
		if created.JobID != job.JobID {
			w.cfg.Logger.Info().Ctx(ctx).Str("job_id", job.JobID).Str("existing_job_id", created.JobID).
				Msg("message repeats an idempotency key already used; dropped")
			return messages.JobRecord{}, false, nil, nil
		}
		rec, err = w.cfg.Store.Transition(ctx, job.JobID, start)
	}
	if errors.Is(err, pipeline.ErrConflict) {
		if job.ReplayName != "" && job.ReplayName != rec.ReplayName && rec.Status.Terminal() {
			rec, err = w.cfg.Store.Transition(ctx, job.JobID, pipeline.Transition{
				From:          []messages.Status{rec.Status},
				To:            messages.StatusProcessing,
				ResetAttempts: true,
				AttemptsDelta: 1,
				ReplayName:    job.ReplayName,
			})
			if errors.Is(err, pipeline.ErrConflict) {
				return rec, false, nil, nil
			}
			if err == nil {
				w.ledger.paid(job.JobID)
			}
			return rec, err == nil, nil, err
		}
		return rec, false, nil, nil
	}
	if err != nil {
		return messages.JobRecord{}, false, nil, err
	}
	w.ledger.paid(job.JobID)
	return rec, true, nil, nil
}

func (w *Worker) createRecord(ctx context.Context, job *messages.Job, d Delivery) (messages.JobRecord, error) {
	job.Priority = job.Priority.OrNormal()
	spec, err := json.Marshal(job)
	if err != nil {
		return messages.JobRecord{}, fmt.Errorf("encode job %s: %w", job.JobID, err)
	}
	rec, created, err := w.cfg.Store.Create(ctx, pipeline.NewJobRecord(*job, spec, d.Metadata[messages.MetaTenant], time.Now().UTC()))
	if err == nil && created {
		w.cfg.Metrics.JobAccepted(rec.Task, rec.Priority)
	}
	return rec, err
}

// archive hands the job's message to the archive and returns its place in the archive's
// current batch, which runJob waits for before the message is acknowledged.
func (w *Worker) archive(d Delivery, job *messages.Job, rec messages.JobRecord) *ops.ArchiveWrite {
	if w.cfg.Archive == nil {
		return nil
	}
	body := rec.Spec
	if len(body) == 0 {
		body = job.Body // the message's own job, as the decoder read it
	}
	if len(body) == 0 {
		body, _ = json.Marshal(job)
	}
	md := make(map[string]string, len(d.Metadata))
	for k, v := range d.Metadata {
		switch k {
		case messages.MetaJobID, messages.MetaPriority, messages.MetaTenant, messages.MetaTraceparent:
			md[k] = v
		}
	}
	return w.cfg.Archive.Add(ops.ArchiveEntry{AcceptedAt: rec.CreatedAt, JobID: rec.JobID, Task: rec.Task,
		Priority: rec.Priority, Tenant: rec.Tenant, Body: body, Metadata: md})
}

// archiveWait is a job's archive write that its message's acknowledgement waits for.
type archiveWait struct {
	jobID string
	write *ops.ArchiveWrite
}

// awaitArchive returns once the archive writes of a delivery's jobs returned: the outcome of
// the delivery, whose jobs' outcomes are recorded and asked for no retry. A message is
// acknowledged only once its jobs are in the archive: when a write failed, the delivery is
// retried as an infrastructure failure (no attempt spent; the job's outcome is already
// recorded, so the next delivery only archives it again).
func (w *Worker) awaitArchive(ctx context.Context, writes []archiveWait) Outcome {
	out := Outcome{}
	for _, a := range writes {
		start := time.Now()
		err := a.write.Wait(ctx)
		w.cfg.Metrics.StageDone("archive", start)
		var o Outcome
		switch {
		case err == nil:
			w.ledger.forget(a.jobID)
			continue
		case ctx.Err() != nil:
			w.handedBack.Add(1)
			o = Outcome{Retry: true, Reason: "shutting down", HandedBack: true}
		default:
			o = w.infraRetry(a.jobID, classify(pipeline.Infrastructure("archive", err)).jobErr, "archive")
		}
		if !out.Retry || o.Delay < out.Delay {
			out = o
		}
	}
	return out
}
