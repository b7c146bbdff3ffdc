package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// How a worker settles a job's attempt: completed, retried, handed back, failed (and
// dead-lettered), and announced. An attempt cut short by infleet's own dependencies is handed
// back in infrastructure.go.

// The statuses a completion may leave: the job's own claim's, or also QUEUED when this write
// counts the attempt. Shared by every Transition: a store only reads them.
var (
	fromProcessing         = []messages.Status{messages.StatusProcessing}
	fromQueuedOrProcessing = []messages.Status{messages.StatusQueued, messages.StatusProcessing}
)

// complete settles an attempt whose result is stored: it records the job COMPLETED (the record
// stage) and announces it (notify).
//
// A job whose claim was deferred and never written (claim) is recorded COMPLETED from QUEUED
// with its attempt counted, in this one write.
func (w *Worker) complete(ctx context.Context, d Delivery, rec messages.JobRecord, res runResult, report *messages.GuardrailReport, claim *deferredClaim) Outcome {
	start := time.Now()
	usage := res.resp.Usage
	batch := res.resp.Batch
	if batch == nil && rec.BatchInference != nil {
		// A job a batch held, answered on demand: it keeps saying so.
		bi := *rec.BatchInference
		bi.State = messages.BatchOnDemand
		batch = &bi
	}
	_, span := pipeline.StartSpan(ctx, "record", trace.SpanKindInternal)
	tr := pipeline.Transition{
		From:      fromProcessing,
		To:        messages.StatusCompleted,
		Model:     res.model,
		Usage:     &usage,
		Guardrail: report,
		ResultURL: messages.ResultPath(rec.JobID),
		Call:      &pipeline.ModelCall{Degraded: res.resp.Degraded, Fallbacks: res.resp.Fallbacks, Prompt: res.resp.Prompt, BatchJob: res.resp.BatchJob, Batch: batch},
		EventID:   w.eventID(rec),
		// Nothing below needs the store's copy of the record written: rec has it.
		Unreturned: true,
		// The job has given up its place: only its message's ack waits for this write.
		Grouped: true,
	}
	unclaimed := !claim.settle()
	var (
		done messages.JobRecord
		err  error
	)
	switch {
	case !unclaimed && claim != nil && errors.Is(claim.err, pipeline.ErrConflict):
		// The deferred claim found the job cancelled or ended by another delivery.
		done, err = *claim.rec, claim.err
	case !unclaimed && claim != nil && claim.err != nil:
		// The deferred claim's write failed: this write counts the attempt. (Had it landed
		// all the same, the attempt counts twice: the one case of a deferred claim that may.)
		unclaimed = true
	}
	if unclaimed {
		tr.From = fromQueuedOrProcessing
		tr.AttemptsDelta = 1
	}
	if err == nil {
		if unclaimed && claim != nil {
			done, err = claim.write(ctx, tr)
		} else {
			done, err = w.cfg.Store.Transition(ctx, rec.JobID, tr)
		}
	}
	w.cfg.Metrics.StageDone("record", start)
	if errors.Is(err, pipeline.ErrConflict) {
		// Cancelled while running, or finished by a concurrent delivery. A cancelled job keeps
		// no result: the one just stored goes. A concurrent delivery's result is the same
		// object and stays. A job run unread that had ended otherwise than COMPLETED (or whose
		// message repeats another job's idempotency key) had no result: it goes too.
		span.SetAttributes(attribute.String("infleet.outcome", "conflict"))
		span.End()
		if done.Status == messages.StatusCancelled || (claim != nil && claim.unread && done.Status != messages.StatusCompleted) {
			w.dropCancelledResult(ctx, rec.JobID)
			w.cfg.Logger.Info().Ctx(ctx).Str("job_id", rec.JobID).Str("status", string(done.Status)).
				Msg("job cancelled or ended elsewhere while its result was stored; result removed")
		}
		return Outcome{}
	}
	pipeline.EndSpan(span, err)
	if err != nil && unclaimed {
		// The result is stored but nothing recorded the attempt: it runs again, uncounted.
		return w.infraRetry(rec.JobID, classify(pipeline.Infrastructure("record completion", err)).jobErr, "record completion")
	}
	if err != nil {
		// The result is stored but the job is not COMPLETED: it runs again, uncounted.
		return w.handBackInfra(ctx, rec, classify(pipeline.Infrastructure("record completion", err)).jobErr, "record completion")
	}
	if done.JobID == "" {
		// Written, unreturned: done is rec as the write made it. rec counts this attempt
		// already (claimed, or as its deferred claim would leave it).
		local := tr
		local.AttemptsDelta = 0
		done = local.Apply(rec)
	}
	w.cfg.Logger.Debug().Ctx(ctx).Str("job_id", rec.JobID).Str("model", res.model).Int("attempts", done.Attempts).Msg("job completed")
	w.notify(ctx, done)
	return Outcome{}
}

// settle records the outcome of an attempt that ended in err, as classify reads it: handed
// back uncounted after an infrastructure failure; failed without a dead letter when a guardrail
// blocked the job; retried while attempts remain; else failed and dead-lettered.
func (w *Worker) settle(ctx context.Context, d Delivery, rec messages.JobRecord, report *messages.GuardrailReport, err error) Outcome {
	v := classify(err)
	if v.infrastructure {
		var infra *pipeline.InfrastructureError
		errors.As(err, &infra)
		return w.handBackInfra(ctx, rec, v.jobErr, infra.Op)
	}
	var blocked *pipeline.BlockedError
	if errors.As(err, &blocked) {
		return w.fail(ctx, d, rec, v.jobErr, blocked.Report, false)
	}
	if v.retry && v.throttled && !rec.CreatedAt.IsZero() && time.Since(rec.CreatedAt) < MaxThrottledWait {
		// Throttling is the provider asking to slow down, not the job failing: the job waits
		// in the queue without spending an attempt, for at most MaxThrottledWait since it was
		// accepted; after that its throttled attempts count as any other.
		return w.retry(ctx, rec, v.jobErr, v.after, -1)
	}
	if v.retry && rec.Attempts < w.cfg.MaxAttempts {
		return w.retry(ctx, rec, v.jobErr, v.after, 0)
	}
	jerr := v.jobErr
	if v.retry {
		jerr.Message = fmt.Sprintf("%s (gave up after %d attempts)", jerr.Message, rec.Attempts)
	}
	return w.fail(ctx, d, rec, jerr, report, true)
}

// MaxThrottledWait is how long after its acceptance a job whose model throttles it is requeued
// without spending an attempt; past it a throttled attempt counts towards workers.max_attempts.
const MaxThrottledWait = time.Hour

// retry hands a failed attempt back to the queue with a backoff delay; attemptsDelta -1 gives
// the attempt back (a throttled call).
func (w *Worker) retry(ctx context.Context, rec messages.JobRecord, jerr messages.JobError, after time.Duration, attemptsDelta int) Outcome {
	delay := max(after, w.cfg.Backoff.Delay(rec.Attempts))
	jerr = withHistory(rec, jerr)
	_, err := w.cfg.Store.Transition(ctx, rec.JobID, pipeline.Transition{
		From:          []messages.Status{messages.StatusProcessing},
		To:            messages.StatusQueued,
		Error:         &jerr,
		AttemptsDelta: attemptsDelta,
	})
	if err != nil && !errors.Is(err, pipeline.ErrConflict) {
		w.cfg.Logger.Warn().Ctx(ctx).Err(err).Str("job_id", rec.JobID).Msg("record retry failed")
	}
	w.cfg.Hub.Notify(rec.JobID)
	w.cfg.Metrics.JobRetried(rec.Task)
	w.cfg.Logger.Info().Ctx(ctx).Str("job_id", rec.JobID).Int("attempt", rec.Attempts).Str("error_code", jerr.Code).
		Dur("delay", delay).Msg("attempt failed; retrying")
	return Outcome{Retry: true, Delay: delay, Reason: jerr.Code}
}

// withHistory returns jerr with the job's earlier failed attempts and this one in its History.
func withHistory(rec messages.JobRecord, jerr messages.JobError) messages.JobError {
	var h []messages.AttemptError
	if rec.Error != nil {
		h = rec.Error.History
	}
	h = append(slices.Clone(h), messages.AttemptError{Attempt: rec.Attempts, Code: jerr.Code, Message: jerr.Message,
		Model: rec.Model, At: time.Now().UTC()})
	if len(h) > messages.MaxAttemptHistory {
		h = h[len(h)-messages.MaxAttemptHistory:]
	}
	jerr.History = h
	return jerr
}

// handBack returns a job cut off by shutdown to the queue without spending its attempt. It
// logs at debug only: the shutdown logs one summary of every hand-back (HandedBack).
func (w *Worker) handBack(rec messages.JobRecord, reason string) Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), finalWriteTimeout)
	defer cancel()
	_, err := w.cfg.Store.Transition(ctx, rec.JobID, pipeline.Transition{
		From:          []messages.Status{messages.StatusProcessing},
		To:            messages.StatusQueued,
		AttemptsDelta: -1,
	})
	if err != nil && !errors.Is(err, pipeline.ErrConflict) {
		w.cfg.Logger.Warn().Err(err).Str("job_id", rec.JobID).Msg("hand back at shutdown: record failed; the attempt stays spent")
	}
	w.cfg.Hub.Notify(rec.JobID)
	w.handedBack.Add(1)
	w.cfg.Logger.Debug().Str("job_id", rec.JobID).Str("reason", reason).Msg("handed back to the queue without spending an attempt")
	return Outcome{Retry: true, Reason: reason, HandedBack: true}
}

// fail ends a job FAILED, keeping its message in the dead-letter place when deadLetter is set.
// The job records at most workers.max_attempts attempts.
func (w *Worker) fail(ctx context.Context, d Delivery, rec messages.JobRecord, jerr messages.JobError, report *messages.GuardrailReport, deadLetter bool) Outcome {
	spent := min(rec.Attempts, w.cfg.MaxAttempts)
	delta := spent - rec.Attempts // below zero only for a job delivered past its attempts
	rec.Attempts = spent
	jerr = withHistory(rec, jerr)
	if deadLetter {
		if err := w.deadLetter(ctx, d, jerr, rec.Attempts, rec.JobID, rec.Task); err != nil {
			// The job ends FAILED and its delivery is acknowledged all the same. The
			// dead-letter place often shares the trouble that failed the job (a full disk
			// under the embedded queue, a broker outage); asking for the delivery again would
			// bring it back past workers.max_attempts time after time, each time rewriting its
			// record, for as long as the trouble lasts. What is lost is only the copy in the
			// dead-letter place: the record keeps the reason, and the archive the message, so
			// `infleet replay --job ID` runs it again.
			w.cfg.Logger.Error().Ctx(ctx).Err(err).Str("job_id", rec.JobID).Str("error_code", jerr.Code).
				Msg("dead-letter publish failed; the job ends FAILED without a dead letter")
			jerr.Message += " (it could not be kept in the dead letters; run it again with `infleet replay --job " + rec.JobID + "`)"
		}
	}
	tr := pipeline.Transition{
		From:          []messages.Status{messages.StatusProcessing},
		To:            messages.StatusFailed,
		AttemptsDelta: delta,
		Error:         &jerr,
		Guardrail:     report,
		EventID:       w.eventID(rec),
	}
	if rec.BatchInference != nil {
		// A job of batch inference ends saying how its batch left it (FinishBatched sets it).
		tr.Call = &pipeline.ModelCall{BatchJob: rec.BatchJob, Batch: rec.BatchInference}
	}
	done, err := w.cfg.Store.Transition(ctx, rec.JobID, tr)
	if errors.Is(err, pipeline.ErrConflict) {
		return Outcome{}
	}
	if err != nil {
		// The outcome was not recorded: the job is delivered again, and that delivery does
		// not count as an attempt (for a job past its attempts, admission then finds it so
		// again and ends it here, without its count growing).
		w.ledger.owe(rec.JobID)
		return w.infraRetry(rec.JobID, classify(pipeline.Infrastructure("record failure", err)).jobErr, "record failure")
	}
	w.cfg.Logger.Info().Ctx(ctx).Str("job_id", rec.JobID).Str("error_code", jerr.Code).Int("attempts", rec.Attempts).Msg("job failed")
	w.notify(ctx, done)
	return Outcome{}
}

// deadLetter keeps the delivery in the dead-letter topic with the reason in its metadata. An
// error means the dead-letter topic did not take it.
func (w *Worker) deadLetter(ctx context.Context, d Delivery, jerr messages.JobError, attempts int, jobID, task string) error {
	id := d.MessageID
	if id == "" {
		id = pipeline.NewJobID()
	}
	msg := message.NewMessage(id, d.Payload)
	for k, v := range d.Metadata {
		if k != messages.MetaNackDelay {
			msg.Metadata.Set(k, v)
		}
	}
	msg.Metadata.Set(messages.MetaDeadReason, jerr.Code+": "+jerr.Message)
	msg.Metadata.Set(messages.MetaAttempts, fmt.Sprint(attempts))
	msg.Metadata.Set(pipeline.MetaDeadCode, jerr.Code)
	msg.Metadata.Set(pipeline.MetaDeadAt, time.Now().UTC().Format(time.RFC3339Nano))
	if jobID != "" {
		msg.Metadata.Set(messages.MetaJobID, jobID)
	}
	if task != "" {
		msg.Metadata.Set(pipeline.MetaTask, task)
	}
	if err := w.cfg.DeadLetters.Publish(w.cfg.Topics.Dead, msg); err != nil {
		return fmt.Errorf("dead-letter message %s: %w", id, err)
	}
	w.cfg.Metrics.DeadLettered(jerr.Code)
	w.cfg.Logger.Warn().Ctx(ctx).Str("message_id", id).Str("job_id", d.Metadata[messages.MetaJobID]).
		Str("error_code", jerr.Code).Msg("message dead-lettered")
	return nil
}

// eventID is the event id of a transition that ends job rec: a new one when events go through
// the store's outbox and a sink would take rec's, else none.
func (w *Worker) eventID(rec messages.JobRecord) string {
	if w.cfg.Outbox == nil || !w.cfg.Outbox.Wants(rec) {
		return ""
	}
	return pipeline.NewEventID()
}

// notify is the last stage: it announces a terminal record to watchers, metrics and the
// notifier. A notifier that fails is logged; the job stays as recorded. With an outbox the
// event is already kept by the store: notify only wakes its dispatcher, and only when the
// event was kept (eventID): a wake for nothing costs the store a claim query.
func (w *Worker) notify(ctx context.Context, rec messages.JobRecord) {
	w.cfg.Hub.Notify(rec.JobID)
	w.cfg.Metrics.JobFinished(rec)
	if w.cfg.Outbox != nil {
		if !w.cfg.Outbox.Wants(rec) {
			return
		}
		// The event is kept by the store, its durable path to the sinks: the notify span
		// marks the hand-over; the dispatcher's delivery is not part of the job's trace.
		_, span := pipeline.StartSpan(ctx, "notify", trace.SpanKindProducer)
		span.SetAttributes(attribute.String("infleet.event_type", messages.EventTypeFor(rec.Status)),
			attribute.String("infleet.job_id", rec.JobID), attribute.Bool("infleet.outbox", true))
		w.cfg.Outbox.Wake()
		span.End()
		return
	}
	if w.cfg.Notifier == nil {
		return
	}
	start := time.Now()
	n := pipeline.NotificationOf(rec)
	if err := pipeline.Announce(ctx, w.cfg.Notifier, n); err != nil {
		w.cfg.Logger.Warn().Ctx(ctx).Err(err).Str("job_id", rec.JobID).Msg("lifecycle event not delivered")
	}
	w.cfg.Metrics.StageDone("notify", start)
}
