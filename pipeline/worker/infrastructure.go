package worker

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// messageKeyPrefix starts the ledger key of a delivery that is not a job (it could not be
// decoded), followed by its message id; a job's key is its id.
const messageKeyPrefix = "message:"

// maxLedgerKeys bounds the ledger. Past it an arbitrary entry is forgotten: that job's next
// infrastructure backoff starts short again, or an attempt owed back stays spent.
const maxLedgerKeys = 10_000

// ledger is what a worker remembers of the infrastructure failures of the jobs it runs: how
// many in a row (the backoff grows with them) and whether an attempt is owed back because the
// store write that would have handed it back failed too. It lives in memory: after a restart,
// or on another worker of a fleet, an owed attempt stays spent. Safe for concurrent use.
type ledger struct {
	mu      sync.Mutex
	entries map[string]ledgerEntry
}

type ledgerEntry struct {
	failures int
	owed     bool
}

// failed counts one more infrastructure failure of key and returns how many in a row.
func (l *ledger) failed(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key)
	e.failures++
	l.entries[key] = e
	return e.failures
}

// owe records that key's current attempt was not handed back: its next admission adds none.
func (l *ledger) owe(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entry(key)
	e.owed = true
	l.entries[key] = e
}

// owes reports whether an attempt is owed back to key.
func (l *ledger) owes(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entries[key].owed
}

// paid records that an admission took the owed attempt into account.
func (l *ledger) paid(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[key]; ok && e.owed {
		e.owed = false
		l.entries[key] = e
	}
}

// forget drops key: its delivery got past the infrastructure.
func (l *ledger) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.entries, key)
}

// entry returns key's entry, making room for it when it is new. l.mu is held.
func (l *ledger) entry(key string) ledgerEntry {
	if l.entries == nil {
		l.entries = make(map[string]ledgerEntry)
	}
	e, ok := l.entries[key]
	if !ok && len(l.entries) >= maxLedgerKeys {
		for k := range l.entries {
			delete(l.entries, k)
			break
		}
	}
	return e
}

// handBackInfra returns an attempt that an infrastructure failure cut short (cause, which
// classify gave ErrCodeInfrastructure) to the queue without spending it: the job goes back to
// QUEUED with the attempt count it had before, and cause as its error. When that write fails
// too, which it will when the job store is what failed, the attempt is owed: the job's next
// admission by this worker adds none. Either way the delivery is retried after the job's
// infrastructure backoff.
func (w *Worker) handBackInfra(ctx context.Context, rec messages.JobRecord, cause messages.JobError, op string) Outcome {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalWriteTimeout)
	defer cancel()
	if rec.Error != nil {
		cause.History = rec.Error.History // infrastructure failures are not attempts: history keeps the attempts
	}
	_, err := w.cfg.Store.Transition(ctx, rec.JobID, pipeline.Transition{
		From:          []messages.Status{messages.StatusProcessing},
		To:            messages.StatusQueued,
		AttemptsDelta: -1,
		Error:         &cause,
	})
	switch {
	case errors.Is(err, pipeline.ErrConflict):
		// Cancelled, or ended by another delivery, meanwhile: nothing to hand back or retry.
		return Outcome{}
	case err != nil:
		w.ledger.owe(rec.JobID)
		w.cfg.Logger.Warn().Ctx(ctx).Err(err).Str("job_id", rec.JobID).
			Msg("hand back after an infrastructure failure: record failed; the job's next delivery will not count as an attempt")
	}
	w.cfg.Hub.Notify(rec.JobID)
	return w.infraRetry(rec.JobID, cause, op)
}

// infraRetry asks for key's delivery again after a backoff that grows with its infrastructure
// failures in a row (Backoff, from its Initial up to its Max): bounded for each delivery, and
// slower the longer the failure lasts, however long that is.
func (w *Worker) infraRetry(key string, cause messages.JobError, op string) Outcome {
	n := w.ledger.failed(key)
	delay := w.cfg.Backoff.Delay(n)
	w.cfg.Metrics.InfrastructureFailed(op)
	ev := w.cfg.Logger.Warn()
	if id, ok := strings.CutPrefix(key, messageKeyPrefix); ok {
		ev = ev.Str("message_id", id)
	} else {
		ev = ev.Str("job_id", key)
	}
	ev.Str("op", op).Str("error_code", cause.Code).Str("error", cause.Message).Int("infra_failures", n).Dur("delay", delay).
		Msg("infrastructure failure; the delivery will be retried without spending an attempt")
	return Outcome{Retry: true, Delay: delay, Reason: messages.ErrCodeInfrastructure, infrastructure: true}
}
