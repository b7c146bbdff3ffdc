package worker

import (
	"context"
	"errors"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// DefaultCancelPoll is how often WatchCancels asks the job store when given no interval.
const DefaultCancelPoll = 250 * time.Millisecond

// WatchCancels stops the jobs this process runs whose record any process moved to CANCELLED
// (DELETE /v1/jobs/{id} on an ingress, another worker or this one): every interval
// (DefaultCancelPoll when not positive) it asks the job store which of the running jobs are
// cancelled, in one read for all of them when the store is a pipeline.CancelFinder, and cancels
// their attempts with cause pipeline.ErrCancelledByUser. A cancelled attempt's model call is cut
// off and it writes no result; one that got its result stored before the cancel was seen has
// it removed when its COMPLETED write is refused (complete). It reads nothing while no job runs
// and needs Config.Hub, where running jobs are registered. It returns when ctx ends; a failed
// read is logged when reads start failing and tried again at the next tick.
func (w *Worker) WatchCancels(ctx context.Context, every time.Duration) {
	every = cmpDuration(every, DefaultCancelPoll)
	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids := w.cfg.Hub.RunningJobs()
		if len(ids) == 0 {
			continue
		}
		readCtx, cancel := context.WithTimeout(ctx, max(every, time.Second))
		cancelled, err := w.cancelledAmong(readCtx, ids)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				w.cfg.Logger.Warn().Err(err).Int("jobs", len(ids)).Msg("cannot read which running jobs were cancelled; trying again")
			}
			failing = true
			continue
		case err == nil && failing:
			w.cfg.Logger.Info().Msg("reading which running jobs were cancelled works again")
			failing = false
		}
		for _, id := range cancelled {
			w.cfg.Logger.Debug().Str("job_id", id).Msg("cancel seen in the job store; stopping the job")
			w.cfg.Hub.CancelRun(id)
		}
	}
}

// cancelledAmong returns those of ids the store records CANCELLED: in one read when the store
// can, else job by job.
func (w *Worker) cancelledAmong(ctx context.Context, ids []string) ([]string, error) {
	if f, ok := w.cfg.Store.(pipeline.CancelFinder); ok {
		return f.CancelledAmong(ctx, ids)
	}
	var out []string
	for _, id := range ids {
		rec, err := w.cfg.Store.Get(ctx, id)
		if errors.Is(err, pipeline.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		if rec.Status == messages.StatusCancelled {
			out = append(out, id)
		}
	}
	return out, nil
}

// dropCancelledResult removes the result an attempt may have stored for a job that was
// cancelled meanwhile, so that a cancelled job never keeps a result; a missing result is no
// error. A result store that cannot delete keeps it; the record, CANCELLED without a
// result_url, never points at it.
func (w *Worker) dropCancelledResult(ctx context.Context, id string) {
	del, ok := w.cfg.Results.(pipeline.BlobDeleter)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	if err := del.Delete(ctx, pipeline.ResultKey(id)); err != nil {
		w.cfg.Logger.Warn().Err(err).Str("job_id", id).Msg("the result of a job cancelled while it was stored could not be removed")
	}
}
