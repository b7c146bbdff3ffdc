package pipeline

import (
	"context"
	"math"
	"slices"
	"time"
)

// StatsStep is the width of one bucket of JobStats.Buckets.
const StatsStep = time.Minute

// StatsReader is an optional ability of a JobStore: fleet-wide figures for operators, never
// a scan of every job. The SQLite and PostgreSQL stores read them with indexed range queries
// over the window asked for; the DynamoDB store from counters its writes keep (the last
// bucket then counts its whole minute, and its latencies come from a histogram).
// Implementations are safe for concurrent use.
type StatsReader interface {
	// JobStats returns the figures of the window [from, to): one bucket per StatsStep from
	// from (the last one may be partial), and the jobs QUEUED and PROCESSING now. A job counts
	// as accepted in the bucket of its CreatedAt and as completed or failed in the bucket of
	// its UpdatedAt while its status is COMPLETED or FAILED; the latency of a COMPLETED job is
	// UpdatedAt - CreatedAt.
	JobStats(ctx context.Context, from, to time.Time) (JobStats, error)
}

// JobStats are a store's figures over a window.
type JobStats struct {
	// Buckets are the window's minutes, oldest first.
	Buckets []StatsBucket
	// Queued and Processing count the jobs in those statuses now.
	Queued, Processing int64
}

// StatsBucket is one step of a window.
type StatsBucket struct {
	Start time.Time
	// Accepted jobs were created in the bucket; Completed and Failed finished in it.
	Accepted, Completed, Failed int64
	// LatencyP50 and LatencyP95 are the end-to-end latencies of the bucket's completed jobs
	// (zero when none completed).
	LatencyP50, LatencyP95 time.Duration
}

// NewStatsBuckets returns the empty buckets of [from, to): from truncated to StatsStep, one
// per step, at least one.
func NewStatsBuckets(from, to time.Time) []StatsBucket {
	start := from.UTC().Truncate(StatsStep)
	n := max(int((to.Sub(start)+StatsStep-1)/StatsStep), 1)
	out := make([]StatsBucket, n)
	for i := range out {
		out[i].Start = start.Add(time.Duration(i) * StatsStep)
	}
	return out
}

// StatsBucketIndex returns the index among buckets starting at start of the time t, in Unix
// milliseconds, or -1 when it falls outside the n buckets.
func StatsBucketIndex(start time.Time, n int, t int64) int {
	d := t - start.UnixMilli()
	if d < 0 {
		return -1
	}
	i := int(d / StatsStep.Milliseconds())
	if i >= n {
		return -1
	}
	return i
}

// Percentile returns the p-th percentile (0 < p <= 1, nearest rank) of durations, sorting
// them in place; zero when there are none.
func Percentile(durations []time.Duration, p float64) time.Duration {
	if len(durations) == 0 {
		return 0
	}
	slices.Sort(durations)
	i := int(math.Ceil(float64(len(durations))*p)) - 1
	return durations[min(max(i, 0), len(durations)-1)]
}
