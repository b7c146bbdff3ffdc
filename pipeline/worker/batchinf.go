package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// BatchInference is what a Worker asks of batch inference (pipeline/batchinf.Batches has it).
// Implementations are safe for concurrent use.
type BatchInference interface {
	// Takes reports whether job goes to batch inference instead of an on-demand call.
	Takes(job *messages.Job) bool
	// Holds reports whether job id belongs to a recorded batch, which then ends it: a
	// delivery of it is a duplicate.
	Holds(ctx context.Context, id string) (bool, error)
	// Add hands job id's request to a batch; nil means the batch holding it is recorded and
	// the job is the batch's. An error means it is not: the job runs on demand.
	Add(ctx context.Context, id string, req pipeline.ModelRequest) error
	// Model is the configured model the batches go to.
	Model() string
}

// batchSpend is an optional ability of a Config.Router (models.Picker has it): batch
// inference counted against the budgets and in the usage store, as on-demand calls are.
type batchSpend interface {
	// OverBudget reports whether a budget counting calls to model for tenant is spent today.
	OverBudget(ctx context.Context, model, tenant string) (bool, error)
	// ChargeBatch counts one answered batch record's usage and cost, whatever the caps.
	ChargeBatch(ctx context.Context, model, tenant, task string, u messages.Usage)
}

// errInBatch ends an attempt whose job a recorded batch holds now: the delivery is
// acknowledged and the job waits in the store for its batch.
var errInBatch = errors.New("the job waits in a batch inference batch")

// batchable reports whether job goes to batch inference.
func (w *Worker) batchable(job *messages.Job) bool {
	return w.cfg.BatchInference != nil && w.cfg.BatchInference.Takes(job)
}

// heldByBatch reports whether a batch holds job already, so that its delivery is dropped.
func (w *Worker) heldByBatch(ctx context.Context, job *messages.Job) (bool, error) {
	if !w.batchable(job) {
		return false, nil
	}
	return w.cfg.BatchInference.Holds(ctx, job.JobID)
}

// toBatch hands the attempt's request to batch inference. It returns errInBatch when a batch
// holds the job now, nil when the job is to be called on demand.
func (w *Worker) toBatch(ctx context.Context, a *attempt, req pipeline.ModelRequest) error {
	if a.batched != nil || a.onDemand || !w.batchable(a.job) {
		return nil
	}
	if sp, ok := w.cfg.Router.(batchSpend); ok {
		// A batch cannot be refused record by record once out, so a tenant or model whose
		// budget is spent stays out of new batches: on demand its budget refuses or
		// downgrades the job.
		over, err := sp.OverBudget(ctx, w.cfg.BatchInference.Model(), a.rec.Tenant)
		if err != nil {
			w.cfg.Logger.Warn().Ctx(ctx).Err(err).Str("job_id", a.job.JobID).Msg("budget spend unreadable; batching the job all the same")
		}
		if over {
			w.cfg.Logger.Debug().Ctx(ctx).Str("job_id", a.job.JobID).Msg("budget spent; the job is not batched but called on demand")
			return nil
		}
	}
	err := w.cfg.BatchInference.Add(ctx, a.job.JobID, req)
	if err == nil {
		w.cfg.Logger.Debug().Ctx(ctx).Str("job_id", a.job.JobID).Msg("job handed to a batch inference batch")
		return errInBatch
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.cfg.Logger.Debug().Ctx(ctx).Err(err).Str("job_id", a.job.JobID).Msg("job not batched; calling the model on demand")
	return nil
}

// FinishBatched ends job id, one of a batch whose provider job ended: from answer (its output
// record, its usage priced at the batch price) through the output guard, the result store and
// the record of completion, as an on-demand answer would; or, when answer is nil, with an
// on-demand call that counts as an attempt. done is false while the job is still to be tried
// again (a retryable failure, attempts left); err says what kept it from being settled. A
// QUEUED job (handed back at shutdown while its batch was recorded) is taken up again; one
// that ended or was cancelled is done. Safe for concurrent use.
func (w *Worker) FinishBatched(ctx context.Context, id string, answer *pipeline.ModelResponse) (done bool, err error) {
	rec, err := w.cfg.Store.Get(ctx, id)
	if errors.Is(err, pipeline.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read job %s: %w", id, err)
	}
	if rec.Status == messages.StatusQueued {
		// Handed back to the queue at shutdown while its group was being recorded: the batch
		// holds it (its deliveries are dropped), so the batch takes it up again here.
		rec, err = w.cfg.Store.Transition(ctx, id, pipeline.Transition{
			From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing,
		})
		if err != nil && !errors.Is(err, pipeline.ErrConflict) {
			return false, fmt.Errorf("take up job %s: %w", id, err)
		}
	}
	if rec.Status != messages.StatusProcessing {
		return true, nil
	}
	if sp, ok := w.cfg.Router.(batchSpend); ok && answer != nil {
		// The provider billed the record: its cost counts once the job is settled from it
		// (completed, or failed by a guardrail), not while it is to be tried again.
		tenant, task := rec.Tenant, rec.Task
		defer func() {
			if done {
				model := answer.Model
				if model == "" && w.cfg.BatchInference != nil {
					model = w.cfg.BatchInference.Model()
				}
				sp.ChargeBatch(ctx, model, tenant, task, answer.Usage)
			}
		}()
	}
	var job messages.Job
	if err := json.Unmarshal(rec.Spec, &job); err != nil {
		jerr := messages.JobError{Code: messages.ErrCodeInvalidJob, Message: fmt.Sprintf("the stored job does not decode: %v", err)}
		w.fail(ctx, Delivery{Payload: rec.Spec, Metadata: map[string]string{messages.MetaJobID: id}}, rec, jerr, nil, false)
		return true, nil
	}
	d := Delivery{Payload: rec.Spec, Metadata: map[string]string{messages.MetaJobID: id, messages.MetaTenant: rec.Tenant}}
	if answer == nil {
		if rec.Attempts >= w.cfg.MaxAttempts {
			if rec.BatchInference != nil {
				bi := *rec.BatchInference
				bi.State = messages.BatchOnDemand
				rec.BatchInference = &bi
			}
			jerr := messages.JobError{Code: messages.ErrCodeAttemptsExceeded, Message: fmt.Sprintf("the job used its %d attempts (workers.max_attempts) in batch inference and on demand", w.cfg.MaxAttempts)}
			w.fail(ctx, d, rec, jerr, nil, true)
			return true, nil
		}
		tr := pipeline.Transition{
			From: []messages.Status{messages.StatusProcessing}, To: messages.StatusProcessing, AttemptsDelta: 1,
		}
		if rec.BatchInference != nil {
			bi := *rec.BatchInference
			bi.State = messages.BatchOnDemand
			tr.Call = &pipeline.ModelCall{BatchJob: rec.BatchJob, Batch: &bi}
		}
		rec, err = w.cfg.Store.Transition(ctx, id, tr)
		if errors.Is(err, pipeline.ErrConflict) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("count the on-demand attempt of job %s: %w", id, err)
		}
	}

	jobCtx, cancelJob := context.WithCancelCause(ctx)
	defer cancelJob(nil)
	unregister := w.cfg.Hub.Running(id, cancelJob)
	defer unregister()
	attemptCtx, cancelAttempt := context.WithTimeout(jobCtx, w.cfg.JobTimeout)
	defer cancelAttempt()
	a := &attempt{job: &job, rec: rec, batched: answer, onDemand: answer == nil}
	res, report, err := w.runAttempt(attemptCtx, a)
	if err == nil {
		out := w.complete(ctx, d, rec, res, report, nil)
		return !out.Retry, nil
	}
	if errors.Is(context.Cause(jobCtx), pipeline.ErrCancelledByUser) {
		w.dropCancelledResult(ctx, id)
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	v := classify(err)
	var blocked *pipeline.BlockedError
	switch {
	case v.infrastructure:
		return false, err
	case errors.As(err, &blocked):
		if answer != nil && answer.Batch != nil {
			rec.BatchJob, rec.BatchInference = answer.BatchJob, answer.Batch // answered, then blocked
		}
		w.fail(ctx, d, rec, v.jobErr, blocked.Report, false)
		return true, nil
	case v.retry && rec.Attempts < w.cfg.MaxAttempts:
		jerr := withHistory(rec, v.jobErr)
		if _, terr := w.cfg.Store.Transition(ctx, id, pipeline.Transition{
			From: []messages.Status{messages.StatusProcessing}, To: messages.StatusProcessing, Error: &jerr,
		}); terr != nil && !errors.Is(terr, pipeline.ErrConflict) {
			w.cfg.Logger.Warn().Ctx(ctx).Err(terr).Str("job_id", id).Msg("record the failed on-demand attempt failed")
		}
		w.cfg.Hub.Notify(id)
		return false, nil
	}
	jerr := v.jobErr
	if v.retry {
		jerr.Message = fmt.Sprintf("%s (gave up after %d attempts)", jerr.Message, rec.Attempts)
	}
	w.fail(ctx, d, rec, jerr, report, true)
	return true, nil
}
