package sqlite

import (
	"context"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// OpenWithoutGroupCommit opens a store whose writer commits every write in its own
// transaction, for side-by-side benchmarks.
func OpenWithoutGroupCommit(ctx context.Context, cfg Config) (*Store, error) {
	return openWith(ctx, cfg, tuning{batchLimit: 1})
}

// OpenWithoutSettle opens a store whose writer takes a batch without yielding first, for
// side-by-side benchmarks.
func OpenWithoutSettle(ctx context.Context, cfg Config) (*Store, error) {
	t := defaultTuning()
	t.settleMax, t.settleBelow = 0, 0
	return openWith(ctx, cfg, t)
}

// OpenSettlingAlways opens a store whose writer yields before every batch, however many
// requests wait, for side-by-side benchmarks.
func OpenSettlingAlways(ctx context.Context, cfg Config) (*Store, error) {
	t := defaultTuning()
	t.settleBelow = maxBatch + 1
	return openWith(ctx, cfg, t)
}

// OpenWithoutGather opens a store whose writer commits grouped writes
// (pipeline.Transition.Grouped) as soon as it takes them, like any other, for side-by-side
// benchmarks and tests.
func OpenWithoutGather(ctx context.Context, cfg Config) (*Store, error) {
	t := defaultTuning()
	t.gatherWait = 0
	return openWith(ctx, cfg, t)
}

// OpenWithSingleRows opens a store whose writer gives every transition a statement of its
// own, for side-by-side benchmarks.
func OpenWithSingleRows(ctx context.Context, cfg Config) (*Store, error) {
	t := defaultTuning()
	t.singleRows = true
	return openWith(ctx, cfg, t)
}

// OpenGathering opens a store whose writer holds a batch of grouped writes up to wait for
// min requests, for tests.
func OpenGathering(ctx context.Context, cfg Config, wait time.Duration, min int) (*Store, error) {
	t := defaultTuning()
	t.gatherWait, t.gatherMin = wait, min
	return openWith(ctx, cfg, t)
}

// QuietRows returns how many transitions s wrote by multi-row statements.
func QuietRows(s *Store) int64 { return s.quietRows.Load() }

// Commits returns how many write batches s has committed since it was opened.
func Commits(s *Store) int64 { return s.commits.Load() }

// ExpireSQL is the statement DeleteFinishedBefore runs, for query-plan tests.
const ExpireSQL = expireSQL

// ListQuery is the statement List runs for q, with its arguments, for query-plan tests.
func ListQuery(q pipeline.ListQuery) (string, []any, error) {
	query, args, _, err := listQuery(q)
	return query, args, err
}
