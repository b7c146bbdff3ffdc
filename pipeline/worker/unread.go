package worker

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// A job's first delivery may run without its record read first (an unread claim): when the
// store keeps a log of cancelled jobs (pipeline.CancelLog) that was read in the last
// cancelRefresh and does not name the job, and the result store (pipeline.BlobStatter) holds
// no result for it. The record is then the one intake wrote, taken from the message: QUEUED,
// no attempt spent. What the read would have caught is caught by the writes instead:
//   - a job cancelled since the log was read runs, and the COMPLETED write, refused, removes
//     its result, as for a cancel that lands while a job runs;
//   - a job that ended FAILED runs again in vain: the refused write removes the result;
//   - a job ended COMPLETED has a result, so its record is read as before and it does not run;
//   - a job without a record (a message a producer dropped on the queue) gets one when its
//     first write finds none.

const (
	// cancelRefresh is how old the cancel log may be for a job to run unread.
	cancelRefresh = 20 * time.Millisecond
	// cancelReload is how often the whole log is read again, dropping the jobs since deleted.
	cancelReload = 30 * time.Second
	// maxCancelWatched is the most cancelled jobs a worker keeps; with more, every record is read.
	maxCancelWatched = 10000
)

// cancelWatch is the worker's copy of its store's cancel log. Safe for concurrent use.
type cancelWatch struct {
	log pipeline.CancelLog
	// refreshEvery is how old the log may be for a job to run unread; 0 means cancelRefresh.
	refreshEvery time.Duration

	mu       sync.Mutex
	ids      map[string]struct{}
	next     int64
	checked  time.Time // the last read of the log that succeeded
	reloaded time.Time // the last read of the whole log
}

// allows reports whether job id may run unread: the log was read within cancelRefresh (it is
// read now when older) and does not name it.
func (c *cancelWatch) allows(ctx context.Context, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= cmp.Or(c.refreshEvery, cancelRefresh) {
		if !c.refresh(ctx, now) {
			return false
		}
	}
	if len(c.ids) > maxCancelWatched {
		return false
	}
	_, cancelled := c.ids[id]
	return !cancelled
}

// refresh reads what the log gained since the last read, or all of it every cancelReload.
// It reports whether the read succeeded (ids a failed read added are cancelled jobs all the
// same, and are kept).
func (c *cancelWatch) refresh(ctx context.Context, now time.Time) bool {
	reload := c.ids == nil || now.Sub(c.reloaded) >= cancelReload
	ids, next := c.ids, c.next
	if reload {
		ids, next = map[string]struct{}{}, 0
	}
	for len(ids) <= maxCancelWatched {
		page, after, err := c.log.CancelledSince(ctx, next)
		if err != nil {
			return false
		}
		for _, id := range page {
			ids[id] = struct{}{}
		}
		if after == next {
			break
		}
		next = after
	}
	if reload {
		c.reloaded = now
	}
	c.ids, c.next, c.checked = ids, next, now
	return true
}

// runsUnread reports whether job may run without its record read (see above).
func (w *Worker) runsUnread(ctx context.Context, job *messages.Job) bool {
	if w.cancels == nil || !w.cancels.allows(ctx, job.JobID) {
		return false
	}
	has, err := w.cfg.Results.(pipeline.BlobStatter).Exists(ctx, pipeline.ResultKey(job.JobID))
	return err == nil && !has
}

// unreadRecord is the record intake wrote for job, as the message tells it: QUEUED, no attempt
// spent, accepted when it was published.
func unreadRecord(job *messages.Job, d Delivery) messages.JobRecord {
	at, err := time.Parse(time.RFC3339Nano, d.Metadata[messages.MetaPublishedAt])
	if err != nil {
		at = time.Now()
	}
	return pipeline.NewJobRecord(*job, nil, d.Metadata[messages.MetaTenant], at.UTC())
}
