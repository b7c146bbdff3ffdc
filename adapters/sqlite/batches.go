package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.BatchStore = (*Store)(nil)

// batchColumns are the batches table's columns in the order scanBatch reads them.
const batchColumns = "id, model, model_id, job_ids, input_uri, output_uri, arn, state, status, owner, lease_until, created_at, updated_at"

// CreateBatch implements pipeline.BatchStore: the batch row and one batch_jobs row per job,
// in one savepoint of the writer's transaction.
func (s *Store) CreateBatch(ctx context.Context, b pipeline.Batch) error {
	ids, err := json.Marshal(b.JobIDs)
	if err != nil {
		return fmt.Errorf("sqlite store: encode the jobs of batch %s: %w", b.ID, err)
	}
	now := time.Now()
	created, updated := orNow(b.CreatedAt, now), orNow(b.UpdatedAt, now)
	return s.write(ctx, "the creation of batch "+b.ID, func(ctx context.Context, conn *sql.Conn) error {
		res, err := conn.ExecContext(ctx, "INSERT INTO batches ("+batchColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
			b.ID, b.Model, b.ModelID, string(ids), b.InputURI, b.OutputURI, b.ARN, string(b.State), b.Status, b.Owner,
			b.LeaseUntil.UnixMilli(), created.UnixMilli(), updated.UnixMilli())
		if err != nil {
			return fmt.Errorf("sqlite store: insert batch %s: %w", b.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite store: batch %s exists: %w", b.ID, pipeline.ErrConflict)
		}
		for _, id := range b.JobIDs {
			res, err := conn.ExecContext(ctx, "INSERT INTO batch_jobs (job_id, batch_id) VALUES (?, ?) ON CONFLICT DO NOTHING", id, b.ID)
			if err != nil {
				return fmt.Errorf("sqlite store: add job %s to batch %s: %w", id, b.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("sqlite store: job %s already belongs to a batch: %w", id, pipeline.ErrConflict)
			}
		}
		return nil
	})
}

// GetBatch implements pipeline.BatchStore.
func (s *Store) GetBatch(ctx context.Context, id string) (pipeline.Batch, error) {
	b, err := scanBatch(s.rdb.QueryRowContext(ctx, "SELECT "+batchColumns+" FROM batches WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.Batch{}, fmt.Errorf("batch %s: %w", id, pipeline.ErrNotFound)
	}
	return b, err
}

// BatchOfJob implements pipeline.BatchStore.
func (s *Store) BatchOfJob(ctx context.Context, jobID string) (string, error) {
	var id string
	err := s.rdb.QueryRowContext(ctx, "SELECT batch_id FROM batch_jobs WHERE job_id = ?", jobID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("batch of job %s: %w", jobID, pipeline.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("sqlite store: read the batch of job %s: %w", jobID, err)
	}
	return id, nil
}

// UpdateBatch implements pipeline.BatchStore: one conditional update on the writer.
func (s *Store) UpdateBatch(ctx context.Context, b pipeline.Batch) error {
	updated := orNow(b.UpdatedAt, time.Now())
	return s.write(ctx, "the update of batch "+b.ID, func(ctx context.Context, conn *sql.Conn) error {
		res, err := conn.ExecContext(ctx, "UPDATE batches SET arn = ?, state = ?, status = ?, lease_until = ?, updated_at = ? WHERE id = ? AND owner = ?",
			b.ARN, string(b.State), b.Status, b.LeaseUntil.UnixMilli(), updated.UnixMilli(), b.ID, b.Owner)
		if err != nil {
			return fmt.Errorf("sqlite store: update batch %s: %w", b.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var owner string
		if err := conn.QueryRowContext(ctx, "SELECT owner FROM batches WHERE id = ?", b.ID).Scan(&owner); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("batch %s: %w", b.ID, pipeline.ErrNotFound)
		}
		return fmt.Errorf("batch %s is leased to %s, not %s: %w", b.ID, owner, b.Owner, pipeline.ErrConflict)
	})
}

// ClaimBatches implements pipeline.BatchStore: one update on the writer, which runs each
// request alone, so two claims never take one batch.
func (s *Store) ClaimBatches(ctx context.Context, owner string, now, until time.Time, limit int) ([]pipeline.Batch, error) {
	if limit <= 0 {
		return nil, errors.New("sqlite store: claim batches with a limit below 1")
	}
	var out []pipeline.Batch
	err := s.write(ctx, "the claim of batches", func(ctx context.Context, conn *sql.Conn) error {
		out = out[:0]
		rows, err := conn.QueryContext(ctx, "UPDATE batches SET owner = ?1, lease_until = ?2 WHERE id IN (SELECT id FROM batches WHERE state <> 'DONE' "+
			"AND (lease_until <= ?3 OR owner = ?1) ORDER BY created_at, id LIMIT ?4) RETURNING "+batchColumns,
			owner, until.UnixMilli(), now.UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("sqlite store: claim batches: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			b, err := scanBatch(rows)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	pipeline.SortBatches(out)
	return out, err
}

// write runs fn as one request of the writer.
func (s *Store) write(ctx context.Context, name string, fn func(context.Context, *sql.Conn) error) error {
	r := &request{ctx: ctx, op: opFunc, fn: fn, name: name}
	if err := s.submit(r); err != nil {
		return err
	}
	return r.err
}

func scanBatch(row scanner) (pipeline.Batch, error) {
	var b pipeline.Batch
	var ids, state string
	var lease, created, updated int64
	if err := row.Scan(&b.ID, &b.Model, &b.ModelID, &ids, &b.InputURI, &b.OutputURI, &b.ARN, &state, &b.Status, &b.Owner, &lease, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return b, err
		}
		return b, fmt.Errorf("sqlite store: read batch: %w", err)
	}
	if err := json.Unmarshal([]byte(ids), &b.JobIDs); err != nil {
		return b, fmt.Errorf("sqlite store: batch %s has a corrupt job_ids column (fix or delete the row): %w", b.ID, err)
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
