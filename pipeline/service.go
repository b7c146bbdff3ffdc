package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
)

// SubmitOptions carries what intake knows about a job beyond its body.
type SubmitOptions struct {
	// Tenant owns the job; empty on an open API.
	Tenant string
	// Traceparent is the W3C trace context of the request, carried to the worker.
	Traceparent string
}

// defaultPollInterval is how often Watch re-reads a job whose changes it cannot hear about
// (an ingress process that shares no Hub with the workers).
const defaultPollInterval = 250 * time.Millisecond

// defaultIntakeTimeout bounds one Submit: its publish and the record write after it.
const defaultIntakeTimeout = 10 * time.Second

// ServiceConfig wires a Service. Store, Results, Publisher and Topics are required.
type ServiceConfig struct {
	Store     JobStore
	Results   BlobStore
	Publisher message.Publisher
	Topics    Topics
	// Hub announces job changes within this process; nil makes Watch poll the store.
	Hub *Hub
	// Notifier receives job.cancelled events; nil sends none.
	Notifier Notifier
	// Ready lists named dependencies checked by Ready, in order.
	Ready []NamedChecker
	// ResultURLs, when set, makes ResultURL hand out links to results (presigned URLs)
	// instead of the API streaming them. nil streams.
	ResultURLs BlobURLSigner
	// PollInterval is how often Watch re-reads the job (default 250ms; with a Hub, a safety net).
	PollInterval time.Duration
	// IntakeTimeout bounds one Submit, which runs to its end whatever happens to the
	// caller's context (default 10s).
	IntakeTimeout time.Duration
	Metrics       *Metrics
	Logger        zerolog.Logger
}

// NamedChecker is a dependency Ready checks, with the name its failure is reported under.
type NamedChecker struct {
	Name    string
	Checker Checker
}

// Service is the intake and query side of the pipeline: it records and queues jobs and answers
// questions about them. It is safe for concurrent use.
type Service struct {
	cfg ServiceConfig
}

// NewService checks cfg and returns a Service.
func NewService(cfg ServiceConfig) (*Service, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("service: no job store configured (set store.kind)"))
	}
	if cfg.Results == nil {
		errs = append(errs, errors.New("service: no result store configured (set results.kind)"))
	}
	if cfg.Publisher == nil {
		errs = append(errs, errors.New("service: no queue publisher configured (set transport.kind)"))
	}
	if err := cfg.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.PollInterval = cmpDuration(cfg.PollInterval, defaultPollInterval)
	cfg.IntakeTimeout = cmpDuration(cfg.IntakeTimeout, defaultIntakeTimeout)
	return &Service{cfg: cfg}, nil
}

// Submit queues job on its priority's topic and records it as QUEUED, in that order: the
// message is the job, and the record is a view of it that a worker taking the message writes
// itself when it finds none. So a crash or a failure at any point of intake leaves either
// nothing (the publish did not happen) or a message that will run with its record: never a
// record without a message. Submit finishes once begun, whatever happens to ctx (a client that
// goes away does not cut intake in half); ctx's values (trace, tenant) are kept.
//
// A job whose IdempotencyKey the tenant used before returns the first job with created false.
// Where the store is a KeyLookup that is found before anything is queued; otherwise (or when
// the first job is still being written) the message published is a spare that workers drop as
// repeating the key. When the
// publish fails nothing is written and the error wraps ErrUnavailable. When the publish
// succeeds but the store refuses the record for longer than intake waits, the error wraps
// ErrUnavailable too, and the job still runs once the store is back: a retry with the same
// idempotency key then answers with that job, never a second one.
func (s *Service) Submit(ctx context.Context, job messages.Job, opt SubmitOptions) (messages.JobRecord, bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.IntakeTimeout)
	defer cancel()
	if job.JobID == "" {
		job.JobID = NewJobID()
	}
	job.Priority = job.Priority.OrNormal()
	if lookup, ok := s.cfg.Store.(KeyLookup); ok && job.IdempotencyKey != "" {
		// A retry finds its job here without queueing a spare message.
		prev, err := lookup.JobByIdempotencyKey(ctx, opt.Tenant, job.IdempotencyKey)
		if err == nil {
			return prev, false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return messages.JobRecord{}, false, fmt.Errorf("look up idempotency key: %w: %w", ErrUnavailable, err)
		}
	}
	spec, err := json.Marshal(job)
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("encode job %s: %w", job.JobID, err)
	}
	msg := NewJobMessage(job.JobID, spec, job.Priority, opt.Tenant, opt.Traceparent)
	msg.SetContext(ctx)
	if err := s.cfg.Publisher.Publish(s.cfg.Topics.For(job.Priority), msg); err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("queue job %s: %w: %w", job.JobID, ErrUnavailable, err)
	}
	rec := NewJobRecord(job, spec, opt.Tenant, time.Now().UTC())
	stored, created, err := s.createAfterPublish(ctx, rec)
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("record job %s: %w: %w", job.JobID, ErrUnavailable, err)
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

// createAfterPublish writes the record of a job whose message is queued, retrying a store
// that fails until ctx ends: the message is out, so giving up early would only turn a job that
// will run into an error for its client.
func (s *Service) createAfterPublish(ctx context.Context, rec messages.JobRecord) (messages.JobRecord, bool, error) {
	for attempt := 1; ; attempt++ {
		stored, created, err := s.cfg.Store.Create(ctx, rec)
		if err == nil {
			return stored, created, nil
		}
		delay := min(time.Duration(attempt)*50*time.Millisecond, time.Second)
		s.cfg.Logger.Warn().Err(err).Str("job_id", rec.JobID).Int("attempt", attempt).
			Msg("record a queued job: store write failed; retrying")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			s.cfg.Logger.Error().Err(err).Str("job_id", rec.JobID).
				Msg("record a queued job: store unreachable; the job runs once a worker can record it")
			return messages.JobRecord{}, false, err
		case <-t.C:
		}
	}
}

// NewJobMessage builds the transport message for a job body with its metadata.
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
	return msg
}

// Get returns the job with that id. A job of another tenant is ErrNotFound, so ids cannot be
// probed; an empty tenant sees every job.
func (s *Service) Get(ctx context.Context, id, tenant string) (messages.JobRecord, error) {
	rec, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return messages.JobRecord{}, err
	}
	if tenant != "" && rec.Tenant != tenant {
		return messages.JobRecord{}, ErrNotFound
	}
	return rec, nil
}

// Cancel moves a live job to CANCELLED and announces it. A job that already ended returns its
// record and ErrConflict. A queued job's message is still delivered later; the worker sees the
// status and drops it. A running job is stopped when it runs in this process.
func (s *Service) Cancel(ctx context.Context, id, tenant string) (messages.JobRecord, error) {
	if _, err := s.Get(ctx, id, tenant); err != nil {
		return messages.JobRecord{}, err
	}
	rec, err := s.cfg.Store.Transition(ctx, id, Transition{
		From: []messages.Status{messages.StatusQueued, messages.StatusProcessing},
		To:   messages.StatusCancelled,
	})
	if err != nil {
		return rec, err
	}
	s.cfg.Hub.CancelRun(id)
	s.cfg.Hub.Notify(id)
	s.cfg.Metrics.JobFinished(rec)
	if s.cfg.Notifier != nil {
		n := NotificationOf(rec)
		if err := s.cfg.Notifier.Notify(ctx, n); err != nil {
			s.cfg.Logger.Warn().Err(err).Str("job_id", id).Msg("job.cancelled event not delivered")
		}
	}
	return rec, nil
}

// List returns a page of jobs, newest first.
func (s *Service) List(ctx context.Context, q ListQuery) ([]messages.JobRecord, string, error) {
	return s.cfg.Store.List(ctx, q)
}

// Result opens the stored result of a completed job; ErrNotFound until the job is COMPLETED.
func (s *Service) Result(ctx context.Context, id, tenant string) (io.ReadCloser, error) {
	rec, err := s.Get(ctx, id, tenant)
	if err != nil {
		return nil, err
	}
	if rec.Status != messages.StatusCompleted {
		return nil, ErrNotFound
	}
	return s.cfg.Results.Get(ctx, ResultKey(id))
}

// ResultURL returns a URL the job's result can be fetched from directly, or "" when results
// are served through the API (no ResultURLs configured). Errors as Result: ErrNotFound when
// the job is missing, of another tenant or not COMPLETED.
func (s *Service) ResultURL(ctx context.Context, id, tenant string) (string, error) {
	if s.cfg.ResultURLs == nil {
		return "", nil
	}
	rec, err := s.Get(ctx, id, tenant)
	if err != nil {
		return "", err
	}
	if rec.Status != messages.StatusCompleted {
		return "", ErrNotFound
	}
	return s.cfg.ResultURLs.SignedURL(ctx, ResultKey(id))
}

// Watch sends the job's record now and again at each change, and closes the channel after a
// terminal status or when ctx ends. A slow reader misses intermediate changes, never the last.
func (s *Service) Watch(ctx context.Context, id, tenant string) (<-chan messages.JobRecord, error) {
	rec, err := s.Get(ctx, id, tenant)
	if err != nil {
		return nil, err
	}
	out := make(chan messages.JobRecord, 1)
	signal, stop := s.cfg.Hub.Subscribe(id)
	go func() {
		defer close(out)
		defer stop()
		last := rec
		out <- rec
		if rec.Status.Terminal() {
			return
		}
		ticker := time.NewTicker(s.cfg.PollInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-signal:
			case <-ticker.C:
			}
			cur, err := s.cfg.Store.Get(ctx, id)
			if err != nil {
				if ctx.Err() == nil {
					s.cfg.Logger.Warn().Err(err).Str("job_id", id).Msg("watch: read job")
				}
				continue
			}
			if cur.Status == last.Status && cur.UpdatedAt.Equal(last.UpdatedAt) {
				continue
			}
			last = cur
			select {
			case out <- cur:
			case <-ctx.Done():
				return
			}
			if cur.Status.Terminal() {
				return
			}
		}
	}()
	return out, nil
}

// Ready checks every configured dependency and returns the first failure, naming it.
func (s *Service) Ready(ctx context.Context) error {
	for _, c := range s.cfg.Ready {
		if err := c.Checker.Check(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return nil
}
