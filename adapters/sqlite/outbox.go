package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.Outbox = (*Store)(nil)

// recordEvent keeps the lifecycle event of rec, just written by a transition with event id id,
// in the outbox, inside the transition's savepoint: both are written or neither.
func (s *Store) recordEvent(ctx context.Context, rec messages.JobRecord, id string) error {
	body, err := pipeline.EncodeNotification(pipeline.EventOf(rec, id))
	if err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	if _, err := s.w.insertEvent.ExecContext(ctx, id, rec.JobID, body); err != nil {
		return fmt.Errorf("sqlite store: keep event %s of job %s: %w", id, rec.JobID, err)
	}
	return nil
}

// insertEventSQL keeps one event; a second write of the same event id changes nothing.
const insertEventSQL = "INSERT INTO outbox (event_id, job_id, body) VALUES (?, ?, ?) ON CONFLICT (event_id) DO NOTHING"

// claimEventsSQL claims, for ?2 until ?1 (Unix ms), up to ?4 events unclaimed at ?3, each the
// earliest kept event of its job.
const claimEventsSQL = `UPDATE outbox SET claimed_until = ?1, holder = ?2, attempts = attempts + 1
WHERE seq IN (
	SELECT o.seq FROM outbox o
	WHERE o.claimed_until <= ?3 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.job_id = o.job_id AND p.seq < o.seq)
	ORDER BY o.seq LIMIT ?4)
RETURNING seq, body, attempts`

// ClaimEvents implements pipeline.Outbox. The claim is one write of the group-committed
// writer, so it is seen by every process using the file.
func (s *Store) ClaimEvents(ctx context.Context, holder string, lease time.Duration, limit int) ([]pipeline.OutboxEvent, error) {
	type claimed struct {
		seq int64
		ev  pipeline.OutboxEvent
	}
	var got []claimed
	now := time.Now()
	err := s.submit(&request{ctx: ctx, op: opOutbox, outbox: func(ctx context.Context, conn *sql.Conn) error {
		got = got[:0]
		rows, err := conn.QueryContext(ctx, claimEventsSQL, now.Add(lease).UnixMilli(), holder, now.UnixMilli(), limit)
		if err != nil {
			return fmt.Errorf("sqlite store: claim events: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c    claimed
				body []byte
			)
			if err := rows.Scan(&c.seq, &body, &c.ev.Attempts); err != nil {
				return fmt.Errorf("sqlite store: claim events: %w", err)
			}
			if c.ev.Notification, err = pipeline.DecodeNotification(body); err != nil {
				return fmt.Errorf("sqlite store: %w", err)
			}
			got = append(got, c)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite store: claim events: %w", err)
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(got, func(a, b claimed) int { return int(a.seq - b.seq) })
	evs := make([]pipeline.OutboxEvent, len(got))
	for i, c := range got {
		evs[i] = c.ev
	}
	return evs, nil
}

// DeleteEvents implements pipeline.Outbox, in one write.
func (s *Store) DeleteEvents(ctx context.Context, evs []pipeline.OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return s.submit(&request{ctx: ctx, op: opOutbox, outbox: func(ctx context.Context, conn *sql.Conn) error {
		for _, ev := range evs {
			if _, err := conn.ExecContext(ctx, "DELETE FROM outbox WHERE event_id = ?", ev.ID()); err != nil {
				return fmt.Errorf("sqlite store: delete event %s: %w", ev.ID(), err)
			}
		}
		return nil
	}})
}

// DelayEvent implements pipeline.Outbox.
func (s *Store) DelayEvent(ctx context.Context, ev pipeline.OutboxEvent, until time.Time) error {
	return s.submit(&request{ctx: ctx, op: opOutbox, outbox: func(ctx context.Context, conn *sql.Conn) error {
		if _, err := conn.ExecContext(ctx, "UPDATE outbox SET claimed_until = ? WHERE event_id = ?", until.UnixMilli(), ev.ID()); err != nil {
			return fmt.Errorf("sqlite store: delay event %s: %w", ev.ID(), err)
		}
		return nil
	}})
}
