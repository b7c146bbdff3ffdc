package intake

import (
	"context"
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

// List returns a page of jobs, newest first.
func (s *Service) List(ctx context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error) {
	return s.cfg.Store.List(ctx, q)
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
