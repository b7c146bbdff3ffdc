package sqlite

import "context"

// OpenWithoutGroupCommit opens a store whose writer commits every write in its own
// transaction, for side-by-side benchmarks.
func OpenWithoutGroupCommit(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, 1)
}

// ExpireSQL is the statement DeleteFinishedBefore runs, for query-plan tests.
const ExpireSQL = expireSQL
