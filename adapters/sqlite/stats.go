package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Statements of JobStats. Each walks an index over the window only: accepted jobs the
// jobs_created index (covering), finished jobs the partial jobs_finished index (whose status
// list they repeat exactly, as SQLite requires), live jobs jobs_status_created (covering).
const (
	statsAcceptedSQL = "SELECT (created_at - ?1) / 60000, count(*) FROM jobs WHERE created_at >= ?1 AND created_at < ?2 GROUP BY 1"
	statsFinishedSQL = "SELECT status, updated_at, created_at FROM jobs INDEXED BY jobs_finished " +
		"WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at >= ?1 AND updated_at < ?2"
	statsLiveSQL = "SELECT status, count(*) FROM jobs WHERE status IN ('QUEUED', 'PROCESSING') GROUP BY status"
)

var _ pipeline.StatsReader = (*Store)(nil)

// JobStats returns the figures of [from, to) and the live job counts; see
// pipeline.StatsReader. It reads from the read pool, in three indexed range queries; the
// latency percentiles are computed here from the window's completed jobs.
func (s *Store) JobStats(ctx context.Context, from, to time.Time) (pipeline.JobStats, error) {
	out := pipeline.JobStats{Buckets: pipeline.NewStatsBuckets(from, to)}
	start := out.Buckets[0].Start
	lo, hi := start.UnixMilli(), to.UnixMilli()
	fail := func(err error) (pipeline.JobStats, error) {
		return pipeline.JobStats{}, fmt.Errorf("sqlite store: job stats: %w", err)
	}

	rows, err := s.rdb.QueryContext(ctx, statsAcceptedSQL, lo, hi)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var i, n int64
		if err := rows.Scan(&i, &n); err != nil {
			rows.Close()
			return fail(err)
		}
		if i >= 0 && int(i) < len(out.Buckets) {
			out.Buckets[i].Accepted = n
		}
	}
	if err := closeRows(rows); err != nil {
		return fail(err)
	}

	latencies := make([][]time.Duration, len(out.Buckets))
	rows, err = s.rdb.QueryContext(ctx, statsFinishedSQL, lo, hi)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var (
			status             string
			updated, createdAt int64
		)
		if err := rows.Scan(&status, &updated, &createdAt); err != nil {
			rows.Close()
			return fail(err)
		}
		i := pipeline.StatsBucketIndex(start, len(out.Buckets), updated)
		if i < 0 {
			continue
		}
		switch messages.Status(status) {
		case messages.StatusCompleted:
			out.Buckets[i].Completed++
			latencies[i] = append(latencies[i], time.Duration(updated-createdAt)*time.Millisecond)
		case messages.StatusFailed:
			out.Buckets[i].Failed++
		}
	}
	if err := closeRows(rows); err != nil {
		return fail(err)
	}
	for i, l := range latencies {
		out.Buckets[i].LatencyP50 = pipeline.Percentile(l, 0.50)
		out.Buckets[i].LatencyP95 = pipeline.Percentile(l, 0.95)
	}

	rows, err = s.rdb.QueryContext(ctx, statsLiveSQL)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return fail(err)
		}
		if messages.Status(status) == messages.StatusQueued {
			out.Queued = n
		} else {
			out.Processing = n
		}
	}
	if err := closeRows(rows); err != nil {
		return fail(err)
	}
	return out, nil
}

// rowsCloser is what closeRows needs of *sql.Rows.
type rowsCloser interface {
	Err() error
	Close() error
}

// closeRows closes rows and returns the error that ended their iteration, if any.
func closeRows(rows rowsCloser) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
