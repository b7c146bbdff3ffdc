package sqlite

import (
	"context"

	"github.com/infleet/infleet/pipeline"
)

// OpenWithoutGroupCommit opens a store whose writer commits every write in its own
// transaction, for side-by-side benchmarks.
func OpenWithoutGroupCommit(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, 1)
}

// OpenWithoutSettle opens a store whose writer takes a batch without yielding first, for
// side-by-side benchmarks.
func OpenWithoutSettle(ctx context.Context, cfg Config) (*Store, error) {
	return openWith(ctx, cfg, maxBatch, 0, 0)
}

// OpenSettlingAlways opens a store whose writer yields before every batch, however many
// requests wait, for side-by-side benchmarks.
func OpenSettlingAlways(ctx context.Context, cfg Config) (*Store, error) {
	return openWith(ctx, cfg, maxBatch, settleRounds, maxBatch+1)
}

// ExpireSQL is the statement DeleteFinishedBefore runs, for query-plan tests.
const ExpireSQL = expireSQL

// ListQuery is the statement List runs for q, with its arguments, for query-plan tests.
func ListQuery(q pipeline.ListQuery) (string, []any, error) {
	query, args, _, err := listQuery(q)
	return query, args, err
}
