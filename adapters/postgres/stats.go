package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// Statements of JobStats, each over an index range of the window: accepted jobs walk
// jobs_created_asc, finished jobs the partial jobs_finished index (whose status list they repeat,
// so the planner may use it), live jobs jobs_status_created_asc. The percentiles are nearest-rank
// (percentile_disc), as pipeline.Percentile computes them.
const (
	statsAcceptedSQL = `SELECT floor(extract(epoch FROM created_at - $1) / 60)::int, count(*)
	FROM jobs WHERE created_at >= $1 AND created_at < $2 GROUP BY 1`
	statsFinishedSQL = `SELECT floor(extract(epoch FROM updated_at - $1) / 60)::int,
	count(*) FILTER (WHERE status = 'COMPLETED'), count(*) FILTER (WHERE status = 'FAILED'),
	coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY (extract(epoch FROM updated_at - created_at) * 1000)::float8) FILTER (WHERE status = 'COMPLETED'), 0),
	coalesce(percentile_disc(0.95) WITHIN GROUP (ORDER BY (extract(epoch FROM updated_at - created_at) * 1000)::float8) FILTER (WHERE status = 'COMPLETED'), 0)
	FROM jobs WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND updated_at >= $1 AND updated_at < $2 GROUP BY 1`
	statsLiveSQL = `SELECT status, count(*) FROM jobs WHERE status IN ('QUEUED', 'PROCESSING') GROUP BY status`
)

var _ pipeline.StatsReader = (*Store)(nil)

// JobStats returns the figures of [from, to) and the live job counts; see
// pipeline.StatsReader. The three statements run in one read-only batch on the pool, each
// aggregating in the database, so a busy window costs one round trip.
func (s *Store) JobStats(ctx context.Context, from, to time.Time) (pipeline.JobStats, error) {
	out := pipeline.JobStats{Buckets: pipeline.NewStatsBuckets(from, to)}
	start, end := out.Buckets[0].Start, storecodec.Millis(to)
	var b pgx.Batch
	b.Queue(statsAcceptedSQL, start, end).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				i int
				n int64
			)
			if err := rows.Scan(&i, &n); err != nil {
				return err
			}
			if i >= 0 && i < len(out.Buckets) {
				out.Buckets[i].Accepted = n
			}
		}
		return rows.Err()
	})
	b.Queue(statsFinishedSQL, start, end).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				i                 int
				completed, failed int64
				p50, p95          float64
			)
			if err := rows.Scan(&i, &completed, &failed, &p50, &p95); err != nil {
				return err
			}
			if i >= 0 && i < len(out.Buckets) {
				bk := &out.Buckets[i]
				bk.Completed, bk.Failed = completed, failed
				bk.LatencyP50 = time.Duration(p50 * float64(time.Millisecond))
				bk.LatencyP95 = time.Duration(p95 * float64(time.Millisecond))
			}
		}
		return rows.Err()
	})
	b.Queue(statsLiveSQL).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				status string
				n      int64
			)
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
			if messages.Status(status) == messages.StatusQueued {
				out.Queued = n
			} else {
				out.Processing = n
			}
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return pipeline.JobStats{}, s.wrap("job stats", err)
	}
	return out, nil
}
