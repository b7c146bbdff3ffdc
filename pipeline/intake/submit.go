package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// SubmitOptions carries what intake knows about a job beyond its body.
type SubmitOptions struct {
	// Tenant owns the job; empty on an open API.
	Tenant string
	// Traceparent is the W3C trace context of the request, carried to the worker.
	Traceparent string
}

// Submit queues job on its priority's topic and records it as QUEUED, in that order: the
// message is the job, and the record is a view of it that a worker taking the message writes
// itself when it finds none. So a crash or a failure at any point of intake leaves either
// nothing (the publish did not happen) or a message that will run with its record: never a
// record without a message. Submit finishes once begun, whatever happens to ctx (a client that
// goes away does not cut intake in half); ctx's values (trace, tenant) are kept.
//
// A job whose IdempotencyKey the tenant used before returns the first job with created false.
// Where the store is a pipeline.KeyLookup that is found before anything is queued; otherwise
// (or when the first job is still being written) the message published is a spare that
// workers drop as repeating the key. When the publish fails nothing is written and the error
// wraps pipeline.ErrUnavailable. When the publish succeeds but the store refuses the record
// for longer than intake waits, the error wraps pipeline.ErrUnavailable too, and the job still
// runs once the store is back: a retry with the same idempotency key then answers with that
// job, never a second one.
func (s *Service) Submit(ctx context.Context, job messages.Job, opt SubmitOptions) (messages.JobRecord, bool, error) {
	// Detached from the caller, with values kept; the queue and the record each get their own
	// IntakeTimeout, so a slow publish never leaves the record no time after it.
	detached := context.WithoutCancel(ctx)
	ctx, cancel := context.WithTimeout(detached, s.cfg.IntakeTimeout)
	defer cancel()
	if job.JobID == "" {
		job.JobID = pipeline.NewJobID()
	}
	job.Priority = job.Priority.OrNormal()
	if lookup, ok := s.cfg.Store.(pipeline.KeyLookup); ok && job.IdempotencyKey != "" {
		// A retry finds its job here without queueing a spare message.
		prev, err := lookup.JobByIdempotencyKey(ctx, opt.Tenant, job.IdempotencyKey)
		if err == nil {
			return prev, false, nil
		}
		if !errors.Is(err, pipeline.ErrNotFound) {
			return messages.JobRecord{}, false, fmt.Errorf("look up idempotency key: %w: %w", pipeline.ErrUnavailable, err)
		}
	}
	spec, err := json.Marshal(job)
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("encode job %s: %w", job.JobID, err)
	}
	if err := s.publish(ctx, job, spec, opt); err != nil {
		return messages.JobRecord{}, false, err
	}
	rec := pipeline.NewJobRecord(job, spec, opt.Tenant, time.Now().UTC())
	recordCtx, cancelRecord := context.WithTimeout(detached, s.cfg.IntakeTimeout)
	defer cancelRecord()
	stored, created, err := s.createAfterPublish(recordCtx, rec)
	if _, ok := errors.AsType[*pipeline.PermanentError](err); ok {
		return messages.JobRecord{}, false, fmt.Errorf("record job %s: %w", job.JobID, err)
	}
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("record job %s: %w: %w", job.JobID, pipeline.ErrUnavailable, err)
	}
	if !created && stored.JobID == job.JobID {
		// A worker took the message first and wrote the record from it: the job is ours.
		s.cfg.Hub.Notify(stored.JobID)
		return stored, true, nil
	}
	if !created {
		return stored, false, nil
	}
	s.cfg.Metrics.JobAccepted(stored.Task, stored.Priority)
	s.cfg.Hub.Notify(stored.JobID)
	return stored, true, nil
}

// publish queues the job's message, in a span of its own (a producer span, the parent of the
// worker's) when ctx's span records. The message carries the trace context of ctx — of the
// publish span when there is one — else the one the caller sent (opt.Traceparent).
func (s *Service) publish(ctx context.Context, job messages.Job, spec []byte, opt SubmitOptions) (err error) {
	topic := s.cfg.Topics.For(job.Priority)
	if pipeline.Tracing(ctx) {
		var span trace.Span
		ctx, span = pipeline.StartSpan(ctx, "publish "+topic, trace.SpanKindProducer)
		defer func() { pipeline.EndSpan(span, err) }()
		span.SetAttributes(
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", topic),
			attribute.String("infleet.job_id", job.JobID),
			attribute.String("infleet.task", job.Task),
		)
	}
	traceparent := opt.Traceparent
	if tp := pipeline.TraceparentFromContext(ctx); tp != "" {
		traceparent = tp
	}
	msg := NewJobMessage(job.JobID, spec, job.Priority, opt.Tenant, traceparent)
	msg.SetContext(ctx)
	if err := s.cfg.Publisher.Publish(topic, msg); err != nil {
		return fmt.Errorf("queue job %s: %w: %w", job.JobID, pipeline.ErrUnavailable, err)
	}
	return nil
}

// createAfterPublish writes the record of a job whose message is queued, retrying a store
// that fails until ctx ends: the message is out, so giving up early would only turn a job that
// will run into an error for its client.
func (s *Service) createAfterPublish(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	for attempt := 1; ; attempt++ {
		stored, created, err := s.cfg.Store.Create(ctx, rec)
		if err == nil {
			return stored, created, nil
		}
		if _, ok := errors.AsType[*pipeline.PermanentError](err); ok {
			return messages.JobRecord{}, false, err // the worker dead-letters the message too
		}
		delay := min(time.Duration(attempt)*50*time.Millisecond, time.Second)
		if attempt == 1 {
			s.cfg.Logger.Warn().Ctx(ctx).Err(err).Str("job_id", rec.JobID).
				Msg("record a queued job: store write failed; retrying")
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			s.cfg.Logger.Error().Ctx(ctx).Err(err).Str("job_id", rec.JobID).
				Msg("record a queued job: store unreachable; the job runs once a worker can record it")
			return messages.JobRecord{}, false, err
		case <-t.C:
		}
	}
}

// NewJobMessage builds the transport message for a job body with its metadata, stamped with
// the time it is built (messages.MetaPublishedAt).
func NewJobMessage(jobID string, body []byte, p messages.Priority, tenant, traceparent string) *message.Message {
	msg := message.NewMessage(jobID, body)
	msg.Metadata.Set(messages.MetaJobID, jobID)
	msg.Metadata.Set(messages.MetaPriority, string(p.OrNormal()))
	if tenant != "" {
		msg.Metadata.Set(messages.MetaTenant, tenant)
	}
	if traceparent != "" {
		msg.Metadata.Set(messages.MetaTraceparent, traceparent)
	}
	msg.Metadata.Set(messages.MetaPublishedAt, time.Now().UTC().Format(time.RFC3339Nano))
	return msg
}
