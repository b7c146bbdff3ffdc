package intake

import (
	"context"
	"time"

	"github.com/infleet/infleet/messages"
)

// defaultPollInterval is how often Watch re-reads a job whose changes it cannot hear about
// (an ingress process that shares no Hub with the workers).
const defaultPollInterval = 250 * time.Millisecond

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
