package intake

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Get returns the job with that id. A job of another tenant is pipeline.ErrNotFound, so ids cannot
// be probed; an empty tenant sees every job.
func (s *Service) Get(ctx context.Context, id, tenant string) (messages.JobRecord, error) {
	rec, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return messages.JobRecord{}, err
	}
	if tenant != "" && rec.Tenant != tenant {
		return messages.JobRecord{}, pipeline.ErrNotFound
	}
	return rec, nil
}

// List returns a page of jobs, newest first. With q.IdempotencyKey it returns the one job
// holding that key for q.Tenant, when it passes q's other filters, through the store's
// KeyLookup (one indexed read), and no cursor.
func (s *Service) List(ctx context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error) {
	if q.IdempotencyKey == "" {
		return s.cfg.Store.List(ctx, q)
	}
	kl, ok := s.cfg.Store.(pipeline.KeyLookup)
	if !ok {
		return nil, "", fmt.Errorf("find a job by idempotency key: %w", &pipeline.PermanentError{Err: errors.New("this job store cannot look jobs up by idempotency key")})
	}
	rec, err := kl.JobByIdempotencyKey(ctx, q.Tenant, q.IdempotencyKey)
	if errors.Is(err, pipeline.ErrNotFound) || (err == nil && !q.Matches(rec)) {
		return []messages.JobRecord{}, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	return []messages.JobRecord{rec}, "", nil
}

// Result opens the stored result of a completed job; pipeline.ErrNotFound until the job is
// COMPLETED.
func (s *Service) Result(ctx context.Context, id, tenant string) (io.ReadCloser, error) {
	rec, err := s.Get(ctx, id, tenant)
	if err != nil {
		return nil, err
	}
	if rec.Status != messages.StatusCompleted {
		return nil, pipeline.ErrNotFound
	}
	return s.cfg.Results.Get(ctx, pipeline.ResultKey(id))
}

// ResultURL returns a URL the job's result can be fetched from directly, or "" when results are
// served through the API (no ResultURLs configured). Errors as Result: pipeline.ErrNotFound when
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
		return "", pipeline.ErrNotFound
	}
	return s.cfg.ResultURLs.SignedURL(ctx, pipeline.ResultKey(id))
}
