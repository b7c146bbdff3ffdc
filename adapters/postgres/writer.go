package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// maxBatch caps the writes one batch carries.
	maxBatch = 256
	// queueDepth is how many writes may wait for a writer before callers block.
	queueDepth = 1024
	// transientRetries bounds how often a batch that lost a deadlock is sent again whole.
	transientRetries = 3
)

// ErrClosed is returned by writes made on, or cut off by, a closed Store.
var ErrClosed = errors.New("postgres store is closed (the process is shutting down; retry against a running instance)")

type opKind uint8

const (
	opCreate opKind = iota
	opTransition
	// opTransitionEvent is a transition that keeps its event in the outbox
	// (transitionEventSQL).
	opTransitionEvent
	// opTransitionQuiet is a Transition.Unreturned: transitionQuietSQL, whose answer is
	// only whether it matched.
	opTransitionQuiet
)

// request is one write handed to the writers: the statement of a Create (insertSQL) or of a
// Transition (transitionSQL) with its arguments, encoded by the caller to keep the writers'
// work short. A writer sets the answer fields, then closes done; the caller reads them only
// after done is closed.
type request struct {
	ctx  context.Context
	op   opKind
	id   string
	args []any

	inserted bool   // opCreate: the row was inserted
	found    bool   // opTransition*: the update matched and row holds the result (not for opTransitionQuiet)
	row      jobRow // opTransition, opTransitionEvent: the updated row, decoded by the caller
	err      error
	done     chan struct{}
}

// what names r in errors.
func (r *request) what() string {
	if r.op == opCreate {
		return "insert job " + r.id
	}
	return "update job " + r.id
}

// submit hands r to the writers and waits for its answer, for ctx, or for Close. A call cut off
// by ctx after a writer took it may still be applied.
func (s *Store) submit(r *request) error {
	r.done = make(chan struct{})
	select {
	case s.reqs <- r:
	case <-r.ctx.Done():
		return fmt.Errorf("postgres store: %s: %w", r.what(), context.Cause(r.ctx))
	case <-s.closing:
		return ErrClosed
	}
	select {
	case <-r.done:
		return r.err
	case <-r.ctx.Done():
		return fmt.Errorf("postgres store: gave up waiting for the write of job %s, which may still be applied: %w", r.id, context.Cause(r.ctx))
	case <-s.done:
		select {
		case <-r.done:
			return r.err
		default:
			return ErrClosed
		}
	}
}

// writeLoop is one writer goroutine: it takes a write and every other one already waiting, up
// to maxBatch, and sends them as one batch. Several writers run at once, each on its own
// connection, so a slow round trip holds up only the writes of its own batch.
func (s *Store) writeLoop() {
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-s.reqs:
			if s.hold != nil {
				<-s.hold
			}
			batch = s.fill(append(batch[:0], r))
			s.runBatch(batch)
		case <-s.closing:
			// Finish what callers handed over before Close.
			for {
				select {
				case r := <-s.reqs:
					batch = s.fill(append(batch[:0], r))
					s.runBatch(batch)
				default:
					return
				}
			}
		}
	}
}

// fill adds to batch every request already waiting, up to maxBatch.
func (s *Store) fill(batch []*request) []*request {
	for len(batch) < maxBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// runBatch writes batch and answers every request in it.
//
// The statements go out as one pgx.Batch: pipelined in one round trip and, with no BEGIN
// around them, run by the server as one implicit transaction that commits at the batch's
// Sync, so a batch costs one commit (one WAL flush) however many writes it carries. An explicit
// transaction would add two statements and change nothing else. Statements are sent in job
// id order, so batches from any number of writers and processes take their row locks in one
// order and do not deadlock one another.
//
// One transaction means that a statement that fails rolls back the whole batch. The
// statements are written not to fail over what another write did: a taken id or key is
// ON CONFLICT DO NOTHING and a status From does not list is an update of no row. When one
// still fails because of its own request (a string PostgreSQL refuses, a key too long for the
// index), that request gets the error and the others are sent again without it; a deadlock or
// serialization failure sends the whole batch again, up to transientRetries times; any other
// error (the table is missing, the connection broke) answers every request with it. A request
// whose ctx has ended is not sent. Statements run under a background context: one caller
// giving up must not cut off the batch the others share.
func (s *Store) runBatch(batch []*request) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	s.batches.Add(1)
	pending := slices.Clone(batch)
	slices.SortStableFunc(pending, func(a, b *request) int { return strings.Compare(a.id, b.id) })
	for retries := 0; ; {
		pending = slices.DeleteFunc(pending, func(r *request) bool {
			if r.ctx.Err() != nil {
				r.err = fmt.Errorf("postgres store: %s: %w", r.what(), context.Cause(r.ctx))
				return true
			}
			return false
		})
		if len(pending) == 0 {
			return
		}
		failed, err := s.sendBatch(pending)
		if err == nil {
			return
		}
		pgErr, isPg := errors.AsType[*pgconn.PgError](err)
		switch {
		case isPg && failed >= 0 && ownFault(pgErr):
			r := pending[failed]
			r.err = s.wrap(r.what(), err)
			pending = slices.Delete(pending, failed, failed+1)
			s.log.Warn().Err(err).Str("job_id", r.id).Int("batch_size", len(pending)+1).Msg("write refused; sending the rest of its batch again")
		case isPg && transient(pgErr) && retries < transientRetries:
			retries++
			s.log.Warn().Err(err).Int("batch_size", len(pending)).Msg("write batch rolled back; sending it again")
		default:
			if !isPg && !pgconn.SafeToRetry(err) {
				// The connection may have failed after the commit: the outcome is unknown.
				err = fmt.Errorf("%w (the write may or may not have been applied)", err)
			}
			s.log.Error().Err(err).Int("batch_size", len(pending)).Msg("write batch failed")
			for _, r := range pending {
				r.err = s.wrap(r.what(), err)
			}
			return
		}
		for _, r := range pending {
			r.inserted, r.found, r.row = false, false, jobRow{}
		}
	}
}

// sendBatch sends one batch of pending's statements and reads the answers into the requests.
// It returns nil when the batch committed; else the error and the index of the request whose
// statement failed, or -1 when the failure is not one statement's.
func (s *Store) sendBatch(pending []*request) (failed int, err error) {
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(pending))}
	for _, r := range pending {
		switch r.op {
		case opCreate:
			b.Queue(insertSQL, r.args...)
		case opTransitionEvent:
			b.Queue(transitionEventSQL, r.args...)
		case opTransitionQuiet:
			b.Queue(transitionQuietSQL, r.args...)
		default:
			b.Queue(transitionSQL, r.args...)
		}
	}
	br := s.pool.SendBatch(context.Background(), b)
	failed = -1
	for i, r := range pending {
		switch r.op {
		case opCreate:
			var tag pgconn.CommandTag
			tag, err = br.Exec()
			r.inserted = tag.RowsAffected() == 1
		case opTransitionQuiet:
			var tag pgconn.CommandTag
			tag, err = br.Exec()
			r.found = err == nil && tag.RowsAffected() == 1
		default:
			err = br.QueryRow().Scan(r.row.dest()...)
			r.found = err == nil
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
		}
		if err != nil {
			failed = i
			break
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if _, isPg := errors.AsType[*pgconn.PgError](err); !isPg {
			failed = -1
		}
		return failed, err
	}
	return -1, nil
}

// ownFault reports whether err is about the data of the statement that failed (SQLSTATE class
// 22 data exception, 23 integrity constraint violation, 54 program limit exceeded), so that
// the same statement fails alone too and the others of its batch do not.
func ownFault(err *pgconn.PgError) bool {
	class := err.Code[:min(2, len(err.Code))]
	return class == "22" || class == "23" || class == "54"
}

// transient reports whether err rolled back a transaction that may succeed when run again: a
// deadlock or a serialization failure.
func transient(err *pgconn.PgError) bool {
	return err.Code == "40P01" || err.Code == "40001"
}
