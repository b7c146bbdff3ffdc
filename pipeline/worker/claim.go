package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// A deferred claim (Config.ClaimAfter) is the PROCESSING record of a job on its message's
// first delivery, written only if the job is still running a while after it took its place.
// A job done sooner is recorded once: COMPLETED, its attempt counted, from QUEUED. Every
// other outcome writes the claim first (claimNow) and settles as a claimed job does.

// claimState is where a deferred claim stands.
type claimState uint8

const (
	claimPending claimState = iota // not written; its timer may be armed
	claimWriting                   // the timer fired: the write runs or ran (done closes after)
	claimDropped                   // never to be written: the job's outcome records the attempt
)

// deferredClaim is one job's deferred claim. Its methods are safe for concurrent use.
type deferredClaim struct {
	w     *Worker
	id    string
	start pipeline.Transition
	// unread is set when the job runs without its record read (unread.go): job and d are
	// its message, to create the record if a write finds none.
	unread bool
	job    *messages.Job
	d      Delivery

	mu    sync.Mutex
	state claimState
	timer *time.Timer
	done  chan struct{} // closed once a write the timer started returned
	// rec and err are what that write returned. rec is a pointer, set only by the write, so
	// that the claims of jobs done sooner (nearly all) do not carry a record each.
	rec *messages.JobRecord
	err error
}

// mayDefer reports whether job's claim may wait: a first delivery, on a transport that counts
// them, of a job that is neither streamed (its claim says where the stream is relayed from),
// replayed, bound for batch inference, nor owed an attempt, past Config.ClaimEagerUntil.
func (w *Worker) mayDefer(job *messages.Job, d Delivery) bool {
	return w.cfg.ClaimAfter > 0 && d.Metadata[messages.MetaDeliveryCount] == "1" && !job.Stream &&
		job.ReplayName == "" && !w.batchable(job) && !w.ledger.owes(job.JobID) &&
		(w.cfg.ClaimEagerUntil.IsZero() || time.Now().After(w.cfg.ClaimEagerUntil))
}

// deferClaim reads job's record, or takes it from the message when the job may run unread
// (runsUnread), and returns it as the claim start would leave it, with the claim to write
// later, when the job waits in QUEUED with attempts left. ok is false when the job must be
// claimed now (missing, in another status, out of attempts); an error is the store's.
func (w *Worker) deferClaim(ctx context.Context, job *messages.Job, d Delivery, start pipeline.Transition) (messages.JobRecord, *deferredClaim, bool, error) {
	at := start
	at.At = time.Now()
	if w.runsUnread(ctx, job) {
		c := &deferredClaim{w: w, id: job.JobID, start: start, done: make(chan struct{}), unread: true, job: job, d: d}
		return at.Apply(unreadRecord(job, d)), c, true, nil
	}
	read := w.cfg.Store.Get
	if lr, ok := w.cfg.Store.(pipeline.LatestReader); ok {
		read = lr.ReadLatest
	}
	rec, err := read(ctx, job.JobID)
	if errors.Is(err, pipeline.ErrNotFound) {
		return messages.JobRecord{}, nil, false, nil
	}
	if err != nil {
		return messages.JobRecord{}, nil, false, err
	}
	if rec.Status != messages.StatusQueued || rec.Attempts >= w.cfg.MaxAttempts {
		return messages.JobRecord{}, nil, false, nil
	}
	return at.Apply(rec), &deferredClaim{w: w, id: job.JobID, start: start, done: make(chan struct{})}, true, nil
}

// write makes transition tr of the claim's job. For a job that ran unread and has no record
// (its message was dropped on the queue by a producer), it creates the record first; when
// the message repeats an idempotency key another job holds, the write is refused as a
// conflict with no record.
func (c *deferredClaim) write(ctx context.Context, tr pipeline.Transition) (messages.JobRecord, error) {
	rec, err := c.w.cfg.Store.Transition(ctx, c.id, tr)
	if !c.unread || !errors.Is(err, pipeline.ErrNotFound) {
		return rec, err
	}
	created, err := c.w.createRecord(ctx, c.job, c.d)
	if err != nil {
		return messages.JobRecord{}, err
	}
	if created.JobID != c.id {
		c.w.cfg.Logger.Info().Ctx(ctx).Str("job_id", c.id).Str("existing_job_id", created.JobID).
			Msg("message repeats an idempotency key already used; dropped")
		return messages.JobRecord{}, fmt.Errorf("job %s: idempotency key held by job %s: %w", c.id, created.JobID, pipeline.ErrConflict)
	}
	return c.w.cfg.Store.Transition(ctx, c.id, tr)
}

// arm starts the claim's timer: it writes the claim Config.ClaimAfter from now unless the job
// settles first. A nil claim (written already) does nothing.
func (c *deferredClaim) arm() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == claimPending && c.timer == nil {
		c.timer = time.AfterFunc(c.w.cfg.ClaimAfter, c.fire)
	}
}

// fire writes the claim, once, unless the job settled meanwhile.
func (c *deferredClaim) fire() {
	c.mu.Lock()
	if c.state != claimPending {
		c.mu.Unlock()
		return
	}
	c.state = claimWriting
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), finalWriteTimeout)
	defer cancel()
	rec, err := c.write(ctx, c.start)
	c.rec, c.err = &rec, err
	if c.err == nil {
		c.w.ledger.paid(c.id)
	}
	close(c.done)
}

// settle stops the claim's timer and reports whether the claim was written (or its write was
// tried: see rec and err); false means it never will be. A nil claim was written before the
// job ran.
func (c *deferredClaim) settle() (written bool) {
	if c == nil {
		return true
	}
	c.mu.Lock()
	switch c.state {
	case claimPending:
		c.state = claimDropped
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
		return false
	case claimDropped:
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	<-c.done
	return true
}

// claimNow makes sure the job's claim is recorded before an outcome other than completion is:
// it writes the claim unless its timer did, and returns the claimed record. ok is false when
// the delivery is settled instead: out, an acknowledgement when the job was cancelled or
// ended by another delivery meanwhile, or a retry when the store failed (no attempt spent).
func (w *Worker) claimNow(ctx context.Context, rec messages.JobRecord, c *deferredClaim) (claimed messages.JobRecord, out Outcome, ok bool) {
	if c == nil {
		return rec, Outcome{}, true
	}
	var err error
	if c.settle() {
		claimed, err = *c.rec, c.err
	} else {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
		claimed, err = c.write(wctx, c.start)
		cancel()
		if err == nil {
			w.ledger.paid(rec.JobID)
		}
	}
	switch {
	case errors.Is(err, pipeline.ErrConflict):
		return messages.JobRecord{}, Outcome{}, false
	case err != nil:
		return messages.JobRecord{}, w.infraRetry(rec.JobID, classify(pipeline.Infrastructure("claim", err)).jobErr, "claim"), false
	}
	return claimed, Outcome{}, true
}
