package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

var _ pipeline.Outbox = (*Store)(nil)

// transitionEventSQL is transitionSQL that also keeps the event of the row it wrote in the
// outbox, in the same statement ($16 the event id): the event exists exactly when the
// transition does, and it goes in the writers' batches like any transition.
var transitionEventSQL = `WITH t AS (` + transitionSQL + `),
e AS (INSERT INTO outbox (event_id, job_id, status, task, tenant, result_url, error, occurred_at, spec)
	SELECT $16::text, job_id, status, task, tenant, result_url, error, updated_at, spec FROM t
	ON CONFLICT (event_id) DO NOTHING)
SELECT ` + columns + ` FROM t`

// claimEventsSQL claims for $2 until $1 up to $4 events unclaimed at $3, each the earliest
// kept event of its job. SKIP LOCKED lets racing claims pass each other's rows; the row lock's
// recheck of claimed_until keeps one event from being claimed twice.
const claimEventsSQL = `UPDATE outbox o SET claimed_until = $1, holder = $2, attempts = o.attempts + 1
FROM (
	SELECT c.seq FROM outbox c
	WHERE c.claimed_until <= $3 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.job_id = c.job_id AND p.seq < c.seq)
	ORDER BY c.seq LIMIT $4
	FOR UPDATE SKIP LOCKED) picked
WHERE o.seq = picked.seq
RETURNING o.seq, o.event_id, o.job_id, o.status, o.task, o.tenant, o.result_url, o.error, o.occurred_at, o.spec, o.attempts`

// ClaimEvents implements pipeline.Outbox with one UPDATE.
func (s *Store) ClaimEvents(ctx context.Context, holder string, lease time.Duration, limit int) ([]pipeline.OutboxEvent, error) {
	now := time.Now()
	rows, err := s.pool.Query(ctx, claimEventsSQL, now.Add(lease), holder, now, limit)
	if err != nil {
		return nil, s.wrap("claim events", err)
	}
	type claimed struct {
		seq int64
		ev  pipeline.OutboxEvent
	}
	var got []claimed
	for rows.Next() {
		var (
			c       claimed
			id      string
			rec     messages.JobRecord
			status  string
			jobErr  []byte
			spec    []byte
			attempt int32
		)
		if err := rows.Scan(&c.seq, &id, &rec.JobID, &status, &rec.Task, &rec.Tenant, &rec.ResultURL, &jobErr,
			&rec.UpdatedAt, &spec, &attempt); err != nil {
			rows.Close()
			return nil, s.wrap("claim events", err)
		}
		rec.Status, rec.Spec = messages.Status(status), spec
		if err := storecodec.DecodeJSONColumns(&rec, nil, nil, jobErr, nil); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres store: event %s: %w", id, err)
		}
		c.ev = pipeline.OutboxEvent{Notification: pipeline.EventOf(rec, id), Attempts: int(attempt)}
		got = append(got, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("claim events", err)
	}
	slices.SortFunc(got, func(a, b claimed) int { return int(a.seq - b.seq) })
	evs := make([]pipeline.OutboxEvent, len(got))
	for i, c := range got {
		evs[i] = c.ev
	}
	return evs, nil
}

// DeleteEvents implements pipeline.Outbox with one DELETE.
func (s *Store) DeleteEvents(ctx context.Context, evs []pipeline.OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID()
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM outbox WHERE event_id = ANY($1::text[])", ids); err != nil {
		return s.wrap("delete delivered events", err)
	}
	return nil
}

// DelayEvent implements pipeline.Outbox.
func (s *Store) DelayEvent(ctx context.Context, ev pipeline.OutboxEvent, until time.Time) error {
	if _, err := s.pool.Exec(ctx, "UPDATE outbox SET claimed_until = $1 WHERE event_id = $2", until, ev.ID()); err != nil {
		return s.wrap("delay event "+ev.ID(), err)
	}
	return nil
}
