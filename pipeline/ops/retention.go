package ops

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// Reaper defaults, applied by NewReaper to zero ReaperConfig fields.
const (
	DefaultReaperInterval = time.Minute
	DefaultReaperBatch    = 500
	DefaultReaperPause    = 100 * time.Millisecond
)

// ReaperConfig wires a Reaper. Store and Retention are required.
type ReaperConfig struct {
	// Store deletes the expired jobs.
	Store pipeline.Expirer
	// Results, when it is a pipeline.BlobBatchDeleter or pipeline.BlobDeleter, loses the result
	// object of every job the reaper deletes (pipeline.ResultKey). nil, or a store that cannot
	// delete, keeps results.
	Results pipeline.BlobStore
	// Retention is how long a finished job is kept after its last update. Must be positive.
	Retention time.Duration
	// Interval is the time between the end of a sweep and the start of the next. Default 1m;
	// the first sweep starts after a random part of it, so that a fleet's processes spread
	// their sweeps.
	Interval time.Duration
	// Batch is how many jobs one DeleteFinishedBefore call (one transaction) deletes. Default
	// 500.
	Batch int
	// Pause is the rest between two batches of a sweep, which leaves the store to the job path.
	// Default 100ms.
	Pause time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts the deleted jobs and results; nil counts nothing.
	Metrics *telemetry.Metrics
	// Logger receives a line per sweep that deleted something and every failure.
	Logger zerolog.Logger
}

// Reaper deletes finished jobs older than a retention, and their results, in small batches. Every
// process that runs one sweeps on its own; the pipeline.Expirer makes concurrent sweeps of one
// store safe. Run and Sweep may be called from one goroutine at a time.
type Reaper struct {
	cfg      ReaperConfig
	deleter  pipeline.BlobDeleter
	batchDel pipeline.BlobBatchDeleter
}

// NewReaper validates cfg and applies its defaults.
func NewReaper(cfg ReaperConfig) (*Reaper, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("reaper: no job store that can delete expired jobs (set ReaperConfig.Store)"))
	}
	if cfg.Retention <= 0 {
		errs = append(errs, fmt.Errorf("reaper: retention %s is not positive (a store that keeps jobs forever needs no reaper)", cfg.Retention))
	}
	if cfg.Interval < 0 || cfg.Batch < 0 || cfg.Pause < 0 {
		errs = append(errs, errors.New("reaper: interval, batch and pause must not be negative (leave them zero for the defaults)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Interval = cmpDuration(cfg.Interval, DefaultReaperInterval)
	cfg.Pause = cmpDuration(cfg.Pause, DefaultReaperPause)
	if cfg.Batch == 0 {
		cfg.Batch = DefaultReaperBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Reaper{cfg: cfg}
	if cfg.Results != nil {
		r.batchDel, _ = cfg.Results.(pipeline.BlobBatchDeleter)
		r.deleter, _ = cfg.Results.(pipeline.BlobDeleter)
	}
	return r, nil
}

// Run sweeps every Interval until ctx ends. A failed sweep is logged and tried again at the
// next one.
func (r *Reaper) Run(ctx context.Context) {
	r.cfg.Logger.Info().Dur("retention", r.cfg.Retention).Dur("interval", r.cfg.Interval).Int("batch", r.cfg.Batch).
		Bool("deletes_results", r.batchDel != nil || r.deleter != nil).Msg("retention: reaper started")
	wait := rand.N(r.cfg.Interval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn().Err(err).Dur("retry_in", r.cfg.Interval).Msg("retention: sweep failed")
		}
		wait = r.cfg.Interval
	}
}

// Sweep deletes every job that finished before now minus Retention (now read once, at the
// start), Batch jobs per call with Pause between calls, and then each batch's results. It
// returns how many jobs it deleted, and stops at the first error of the job store; failures
// to delete results are logged and counted out, not returned: their jobs are gone already.
// When ctx ends Sweep stops between batches: a batch that has started runs to its end, so
// that no job is deleted without its result.
func (r *Reaper) Sweep(ctx context.Context) (int, error) {
	began := time.Now()
	before := r.cfg.Now().Add(-r.cfg.Retention)
	jobs, results := 0, 0
	defer func() {
		if jobs > 0 {
			r.cfg.Logger.Info().Int("jobs", jobs).Int("results", results).Time("finished_before", before).
				Dur("took", time.Since(began)).Msg("retention: expired jobs deleted")
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return jobs, context.Cause(ctx)
		}
		ids, n, err := r.batch(ctx, before)
		jobs += len(ids)
		results += n
		if err != nil {
			return jobs, fmt.Errorf("delete jobs finished before %s: %w", before.UTC().Format(time.RFC3339), err)
		}
		if len(ids) < r.cfg.Batch {
			return jobs, nil
		}
		select {
		case <-ctx.Done():
			return jobs, context.Cause(ctx)
		case <-time.After(r.cfg.Pause):
		}
	}
}

// batchTimeout bounds one batch: its job deletions and then its result deletions.
const batchTimeout = time.Minute

// batch deletes one batch of jobs and then their results, and returns the jobs' ids and how
// many results went. A batch once started is finished even when ctx ends (within
// batchTimeout): a job deleted without its result being deleted would leave the result behind
// for good.
func (r *Reaper) batch(ctx context.Context, before time.Time) ([]string, int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	ids, err := r.cfg.Store.DeleteFinishedBefore(ctx, before, r.cfg.Batch)
	n := r.deleteResults(ctx, ids)
	r.cfg.Metrics.Expired(len(ids), n)
	return ids, n, err
}

// deleteResults deletes the result objects of the jobs ids and returns how many deletions
// succeeded (a missing object counts: it is gone).
func (r *Reaper) deleteResults(ctx context.Context, ids []string) int {
	if len(ids) == 0 {
		return 0
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = pipeline.ResultKey(id)
	}
	switch {
	case r.batchDel != nil:
		if err := r.batchDel.DeleteBatch(ctx, keys); err != nil {
			r.cfg.Logger.Warn().Err(err).Int("results", len(keys)).Msg("retention: results of deleted jobs not deleted; remove them by hand")
			return 0
		}
		return len(keys)
	case r.deleter != nil:
		deleted := 0
		var firstErr error
		for _, k := range keys {
			if err := r.deleter.Delete(ctx, k); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			deleted++
		}
		if firstErr != nil {
			r.cfg.Logger.Warn().Err(firstErr).Int("results", len(keys)-deleted).Msg("retention: results of deleted jobs not deleted; remove them by hand")
		}
		return deleted
	}
	return 0
}

// cmpDuration is d, or def when d is not positive.
func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
