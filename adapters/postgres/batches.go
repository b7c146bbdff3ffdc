package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.BatchStore = (*Store)(nil)

// batchColumns are the batches table's columns (migration 0006) in the order scanBatch reads
// them.
const batchColumns = "id, model, model_id, job_ids, input_uri, output_uri, arn, state, status, owner, lease_until, created_at, updated_at"

// CreateBatch implements pipeline.BatchStore: the batch row and its batch_jobs rows in one
// transaction; a taken id or job rolls it all back.
func (s *Store) CreateBatch(ctx context.Context, b pipeline.Batch) error {
	ids, err := json.Marshal(b.JobIDs)
	if err != nil {
		return fmt.Errorf("postgres store: encode the jobs of batch %s: %w", b.ID, err)
	}
	now := time.Now()
	errTaken := errors.New("taken")
	var what string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO batches ("+batchColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
			b.ID, b.Model, b.ModelID, string(ids), b.InputURI, b.OutputURI, b.ARN, string(b.State), b.Status, b.Owner,
			b.LeaseUntil.UnixMilli(), orNow(b.CreatedAt, now).UnixMilli(), orNow(b.UpdatedAt, now).UnixMilli())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			what = "batch " + b.ID + " exists"
			return errTaken
		}
		rows, err := tx.Query(ctx, "INSERT INTO batch_jobs (job_id, batch_id) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING RETURNING job_id", b.JobIDs, b.ID)
		if err != nil {
			return err
		}
		added, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(added) != len(b.JobIDs) {
			what = fmt.Sprintf("%d of the %d jobs of batch %s already belong to a batch", len(b.JobIDs)-len(added), len(b.JobIDs), b.ID)
			return errTaken
		}
		return nil
	})
	if errors.Is(err, errTaken) {
		return fmt.Errorf("postgres store: %s: %w", what, pipeline.ErrConflict)
	}
	if err != nil {
		return s.wrap("create batch "+b.ID, err)
	}
	return nil
}

// GetBatch implements pipeline.BatchStore.
func (s *Store) GetBatch(ctx context.Context, id string) (pipeline.Batch, error) {
	b, err := scanBatch(s.pool.QueryRow(ctx, "SELECT "+batchColumns+" FROM batches WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Batch{}, fmt.Errorf("batch %s: %w", id, pipeline.ErrNotFound)
	}
	if err != nil {
		return pipeline.Batch{}, s.wrap("get batch "+id, err)
	}
	return b, nil
}

// BatchOfJob implements pipeline.BatchStore.
func (s *Store) BatchOfJob(ctx context.Context, jobID string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, "SELECT batch_id FROM batch_jobs WHERE job_id = $1", jobID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("batch of job %s: %w", jobID, pipeline.ErrNotFound)
	}
	if err != nil {
		return "", s.wrap("read the batch of job "+jobID, err)
	}
	return id, nil
}

// UpdateBatch implements pipeline.BatchStore: one conditional update.
func (s *Store) UpdateBatch(ctx context.Context, b pipeline.Batch) error {
	tag, err := s.pool.Exec(ctx, "UPDATE batches SET arn = $1, state = $2, status = $3, lease_until = $4, updated_at = $5 WHERE id = $6 AND owner = $7",
		b.ARN, string(b.State), b.Status, b.LeaseUntil.UnixMilli(), orNow(b.UpdatedAt, time.Now()).UnixMilli(), b.ID, b.Owner)
	if err != nil {
		return s.wrap("update batch "+b.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var owner string
	if err := s.pool.QueryRow(ctx, "SELECT owner FROM batches WHERE id = $1", b.ID).Scan(&owner); errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("batch %s: %w", b.ID, pipeline.ErrNotFound)
	}
	return fmt.Errorf("batch %s is leased to %s, not %s: %w", b.ID, owner, b.Owner, pipeline.ErrConflict)
}

// ClaimBatches implements pipeline.BatchStore: one update of the rows a locking read picked,
// skipping rows another claim holds.
func (s *Store) ClaimBatches(ctx context.Context, owner string, now, until time.Time, limit int) ([]pipeline.Batch, error) {
	if limit <= 0 {
		return nil, errors.New("postgres store: claim batches with a limit below 1")
	}
	rows, err := s.pool.Query(ctx, "UPDATE batches SET owner = $1, lease_until = $2 WHERE id IN (SELECT id FROM batches WHERE state <> 'DONE' "+
		"AND (lease_until <= $3 OR owner = $1) ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING "+batchColumns,
		owner, until.UnixMilli(), now.UnixMilli(), limit)
	if err != nil {
		return nil, s.wrap("claim batches", err)
	}
	defer rows.Close()
	var out []pipeline.Batch
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return nil, s.wrap("claim batches", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("claim batches", err)
	}
	pipeline.SortBatches(out)
	return out, nil
}

func scanBatch(row pgx.Row) (pipeline.Batch, error) {
	var b pipeline.Batch
	var ids, state string
	var lease, created, updated int64
	if err := row.Scan(&b.ID, &b.Model, &b.ModelID, &ids, &b.InputURI, &b.OutputURI, &b.ARN, &state, &b.Status, &b.Owner, &lease, &created, &updated); err != nil {
		return b, err
	}
	if err := json.Unmarshal([]byte(ids), &b.JobIDs); err != nil {
		return b, fmt.Errorf("batch %s has a corrupt job_ids column (fix or delete the row): %w", b.ID, err)
	}
	b.State = pipeline.BatchState(state)
	b.LeaseUntil, b.CreatedAt, b.UpdatedAt = time.UnixMilli(lease).UTC(), time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return b, nil
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}
