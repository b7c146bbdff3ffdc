package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

const selectByKeySQL = "SELECT " + columns + " FROM jobs WHERE tenant = $1 AND idempotency_key = $2 AND idempotency_key <> ''"

// JobByIdempotencyKey returns the job holding tenant's idempotency key, or an error wrapping
// pipeline.ErrNotFound; see pipeline.KeyLookup.
func (s *Store) JobByIdempotencyKey(ctx context.Context, tenant, key string) (messages.JobRecord, error) {
	rec, err := scanRecord(s.pool.QueryRow(ctx, selectByKeySQL, tenant, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return messages.JobRecord{}, fmt.Errorf("idempotency key: %w", pipeline.ErrNotFound)
	}
	if err != nil {
		return messages.JobRecord{}, s.wrap("find the job of an idempotency key", err)
	}
	return rec, nil
}
