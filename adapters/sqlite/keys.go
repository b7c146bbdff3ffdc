package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

const selectByKeySQL = "SELECT " + columns + " FROM jobs WHERE tenant = ? AND idempotency_key = ? AND idempotency_key <> ''"

// JobByIdempotencyKey returns the job holding tenant's idempotency key, or an error wrapping
// pipeline.ErrNotFound; see pipeline.KeyLookup. It reads from the read pool.
func (s *Store) JobByIdempotencyKey(ctx context.Context, tenant, key string) (messages.JobRecord, error) {
	rec, err := scanRecord(s.rdb.QueryRowContext(ctx, selectByKeySQL, tenant, key))
	if errors.Is(err, sql.ErrNoRows) {
		return messages.JobRecord{}, fmt.Errorf("idempotency key: %w", pipeline.ErrNotFound)
	}
	return rec, err
}
