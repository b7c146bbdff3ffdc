package ops

import (
	"context"
	"sync"
	"time"

	"github.com/infleet/infleet/pipeline"
)

const (
	// statsSettle is how long after a minute ends its figures are taken as final: jobs finish
	// "in" the minute of their last update, which is now when it happens, so a minute that
	// ended this long ago takes no more (short of clocks apart by more than this).
	statsSettle = 2 * time.Minute
	// statsRefresh is how often the settled minutes are read again in full: replays, redrives
	// and retention move or delete jobs of past minutes.
	statsRefresh = 5 * time.Minute
)

// statsCache keeps the settled minutes of the last window read, so that a window's figures
// cost the store the minutes since, not the whole window. Safe for concurrent use; one
// caller reads the store at a time, and the others wait for its figures.
type statsCache struct {
	mu sync.Mutex
	// buckets are contiguous settled minutes, oldest first, covering [start, end).
	buckets    []pipeline.StatsBucket
	start, end time.Time
	// full is when the settled minutes were last read in full.
	full time.Time
}

// jobStats returns r's figures of [from, now) (from on a minute), reading the store only for
// the minutes not settled in the cache: all of them on the first call, every statsRefresh,
// or when the window starts before the cache; else the newly settled minutes and the last
// statsSettle.
func (c *statsCache) jobStats(ctx context.Context, r pipeline.StatsReader, from, now time.Time) (pipeline.JobStats, error) {
	settled := now.Add(-statsSettle).Truncate(pipeline.StatsStep)
	if !settled.After(from) {
		return r.JobStats(ctx, from, now)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.buckets) == 0 || now.Sub(c.full) >= statsRefresh || now.Before(c.full) ||
		from.Before(c.start) || settled.Before(c.end):
		js, err := r.JobStats(ctx, from, settled)
		if err != nil {
			return pipeline.JobStats{}, err
		}
		c.buckets, c.start, c.end, c.full = js.Buckets, from, settled, now
	case c.end.Before(settled):
		js, err := r.JobStats(ctx, c.end, settled)
		if err != nil {
			return pipeline.JobStats{}, err
		}
		c.buckets, c.end = append(c.buckets, js.Buckets...), settled
	}
	// Forget the minutes no window reaches any more (a window starts at most a minute before
	// its length back, on the minute).
	if drop := int(now.Add(-MaxStatsWindow-pipeline.StatsStep).Sub(c.start) / pipeline.StatsStep); drop > 0 {
		drop = min(drop, len(c.buckets))
		c.buckets, c.start = append([]pipeline.StatsBucket(nil), c.buckets[drop:]...), c.start.Add(time.Duration(drop)*pipeline.StatsStep)
	}

	recent, err := r.JobStats(ctx, settled, now)
	if err != nil {
		return pipeline.JobStats{}, err
	}
	skip := int(from.Sub(c.start) / pipeline.StatsStep)
	out := pipeline.JobStats{Queued: recent.Queued, Processing: recent.Processing,
		Buckets: make([]pipeline.StatsBucket, 0, len(c.buckets)-skip+len(recent.Buckets))}
	out.Buckets = append(out.Buckets, c.buckets[skip:]...)
	out.Buckets = append(out.Buckets, recent.Buckets...)
	return out, nil
}
