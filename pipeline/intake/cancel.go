package intake

import (
	"context"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Cancel moves a live job to CANCELLED and announces it. A job that already ended returns its
// record and pipeline.ErrConflict. A queued job's message is still delivered later; the worker sees
// the status and drops it. A running job is stopped at once when it runs in this process, and
// within workers.cancel_poll when it runs in another (worker.Worker.WatchCancels).
func (s *Service) Cancel(ctx context.Context, id, tenant string) (messages.JobRecord, error) {
	cur, err := s.Get(ctx, id, tenant)
	if err != nil {
		return messages.JobRecord{}, err
	}
	var eventID string
	if s.cfg.Outbox != nil && s.cfg.Outbox.Wants(cur) {
		eventID = pipeline.NewEventID()
	}
	rec, err := s.cfg.Store.Transition(ctx, id, pipeline.Transition{
		From:    []messages.Status{messages.StatusQueued, messages.StatusProcessing},
		To:      messages.StatusCancelled,
		EventID: eventID,
	})
	if err != nil {
		return rec, err
	}
	s.cfg.Hub.CancelRun(id)
	s.cfg.Hub.Notify(id)
	s.cfg.Metrics.JobFinished(rec)
	if s.cfg.Outbox != nil {
		if eventID != "" {
			s.cfg.Outbox.Wake()
		}
	} else if s.cfg.Notifier != nil {
		n := pipeline.NotificationOf(rec)
		if err := pipeline.Announce(ctx, s.cfg.Notifier, n); err != nil {
			s.cfg.Logger.Warn().Ctx(ctx).Err(err).Str("job_id", id).Msg("job.cancelled event not delivered")
		}
	}
	return rec, nil
}
