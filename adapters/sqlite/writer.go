package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// writeStmts are the statements the writer runs, prepared once on the write connection.
type writeStmts struct {
	begin, commit, rollback        *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
	insert, update, updateQuiet    *sql.Stmt
	delete                         *sql.Stmt
	selectByID, selectByKey        *sql.Stmt
	expire, insertEvent            *sql.Stmt
	// quiet are the multi-row completions (quietrun.go) by their number of rows, prepared on
	// first use.
	quiet map[int]*sql.Stmt
	// answerLater is answer's list of the requests it answers after the creates.
	answerLater []*request
	// quietArgs and quietApplied are applyQuietRun's arguments and the jobs its statement
	// changed, kept from one run to the next (the writer runs one statement at a time).
	quietArgs    []any
	quietApplied map[string]bool
}

func (w *writeStmts) all() []**sql.Stmt {
	return []**sql.Stmt{
		&w.begin, &w.commit, &w.rollback, &w.savepoint, &w.release, &w.rollbackTo,
		&w.insert, &w.update, &w.updateQuiet, &w.delete, &w.selectByID, &w.selectByKey, &w.expire, &w.insertEvent,
	}
}

func (w *writeStmts) prepare(ctx context.Context, conn *sql.Conn) error {
	queries := []string{
		"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK",
		"SAVEPOINT req", "RELEASE req", "ROLLBACK TO req",
		"INSERT INTO jobs (" + columns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
		transitionSQL,
		transitionQuietSQL,
		"DELETE FROM jobs WHERE job_id = ?",
		"SELECT " + columns + " FROM jobs WHERE job_id = ?",
		"SELECT " + columns + " FROM jobs WHERE tenant = ? AND idempotency_key = ? AND idempotency_key <> ''",
		expireSQL,
		insertEventSQL,
	}
	for i, p := range w.all() {
		st, err := conn.PrepareContext(ctx, queries[i])
		if err != nil {
			return fmt.Errorf("sqlite store: prepare %q: %w", queries[i], err)
		}
		*p = st
	}
	return nil
}

func (w *writeStmts) close() error {
	var errs []error
	for _, p := range w.all() {
		if *p != nil {
			errs = append(errs, (*p).Close())
		}
	}
	for _, st := range w.quiet {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

type opKind uint8

const (
	opCreate opKind = iota
	opTransition
	opDelete
	opExpire
	opFunc
	opOutbox
	opRead
)

// request is one write handed to the writer. The writer sets the answer fields, then sends
// on done (buffered, so that it never waits for a caller that gave up); the caller reads them
// only after receiving from done (answered).
type request struct {
	ctx  context.Context
	op   opKind
	id   string
	rec  messages.JobRecord
	args []any // insert arguments of rec, or transition arguments of tr, encoded by the caller
	tr   pipeline.Transition
	// outbox runs an opOutbox on the write connection, inside the batch's transaction.
	outbox func(ctx context.Context, conn *sql.Conn) error
	// before (Unix ms) and limit bound an opExpire.
	before int64
	limit  int

	out messages.JobRecord
	ids []string // the jobs an opExpire deleted
	// fn is an opFunc's write, run on the write connection inside the request's savepoint;
	// any error it returns undoes what it wrote. It may run twice (see runBatch), so it sets
	// its results afresh each time. name says what it writes, for errors.
	fn   func(ctx context.Context, conn *sql.Conn) error
	name string
	// grouped is set for a write no job waits for (pipeline.Transition.Grouped): the writer
	// may hold it for more (see gather).
	grouped bool
	created bool
	err     error
	done    chan struct{}
	// answered is set by submit once done has delivered the writer's answer: the writer is
	// then through with the request, and putRequest may recycle it.
	answered bool
}

// requests recycles the requests of a job's writes (Create, Transition, ReadLatest), with
// their done channels, once the writer has answered them: each is over a kilobyte (two job
// records and a transition), and every job makes two or three.
var requests = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// getRequest returns a zero request with a done channel.
func getRequest() *request { return requests.Get().(*request) }

// putRequest recycles r if the writer has answered it. A request whose caller stopped
// waiting may still be in the writer's hands: it is left to the garbage collector.
func putRequest(r *request) {
	if !r.answered {
		return
	}
	done, args := r.done, r.args
	clear(args)
	*r = request{done: done, args: args[:0]}
	requests.Put(r)
}

// what names r in errors.
func (r *request) what() string {
	switch r.op {
	case opExpire:
		return "the deletion of finished jobs"
	case opOutbox:
		return "the write of the outbox"
	case opFunc:
		return r.name
	}
	return "the write of job " + r.id
}

// submit hands r to the writer and waits for its answer, for ctx, or for Close. A call cut off
// by ctx after the writer took it may still be applied.
func (s *Store) submit(r *request) error {
	if r.done == nil {
		r.done = make(chan struct{}, 1)
	}
	queue := s.reqs
	if r.op == opCreate {
		queue = s.creates
	}
	select {
	case queue <- r:
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	case <-s.closing:
		return ErrClosed
	}
	select {
	case <-r.done:
		r.answered = true
		return full(r.err)
	case <-r.ctx.Done():
		return fmt.Errorf("sqlite store: gave up waiting for %s, which may still be applied: %w", r.what(), context.Cause(r.ctx))
	case <-s.done:
		select {
		case <-r.done:
			r.answered = true
			return full(r.err)
		default:
			return ErrClosed
		}
	}
}

// full returns err marked with pipeline.ErrStorageFull when SQLite refused the write because
// the disk (or the database's size limit) is full, and err unchanged otherwise. Nothing needs
// reopening afterwards: the transaction was rolled back, and writes succeed again once there
// is space.
func full(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlitedriver.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return fmt.Errorf("%w: %w", err, pipeline.ErrStorageFull)
	}
	return err
}

// writeLoop is the writer goroutine: it owns wconn and the write statements until it returns.
func (s *Store) writeLoop() {
	defer close(s.done)
	batch := make([]*request, 0, s.batchLimit+s.joinLimit())
	for {
		select {
		case r := <-s.creates:
			batch = s.runBatch(s.fill(append(batch[:0], r)))
		case r := <-s.reqs:
			batch = s.runBatch(s.fill(append(batch[:0], r)))
		case <-s.closing:
			// Finish what callers handed over before Close.
			for {
				select {
				case r := <-s.creates:
					batch = s.runBatch(s.fill(append(batch[:0], r)))
				case r := <-s.reqs:
					batch = s.runBatch(s.fill(append(batch[:0], r)))
				default:
					return
				}
			}
		}
	}
}

// settle lets the goroutines that are about to hand the writer a request do so before it takes
// a batch: it yields the processor while the queues keep growing, a few times at most. Requests
// tend to arrive in trickles behind the same stages (a request's queue publish, a worker's
// model call), and an eager writer would commit each trickle on its own, paying a commit's WAL
// frames for a handful of writes. A lone request loses a yield or two, microseconds.
//
// It does not yield when a quarter of a batch or more already waits: the batch is large
// anyway, and a busy writer's yield puts it behind every runnable goroutine (a worker pool's
// hundreds on two CPUs), while the creates it would answer queue behind it.
func (s *Store) settle() {
	if s.batchLimit <= 1 {
		return
	}
	n := len(s.creates) + len(s.reqs)
	if n >= s.settleBelow {
		return
	}
	for range s.settleMax {
		runtime.Gosched()
		m := len(s.creates) + len(s.reqs)
		if m == n || m >= s.batchLimit {
			return
		}
		n = m
	}
}

// fill adds to batch every request already waiting, up to the batch limit: creates first, up
// to half the limit, so that an accept never queues behind the transitions of a busy worker
// pool while those still get at least half of every batch; then the other writes; then more
// creates if there is room.
func (s *Store) fill(batch []*request) []*request {
	s.settle()
	batch = take(batch, s.creates, max(s.batchLimit/2, 1))
	batch = take(batch, s.reqs, s.batchLimit)
	batch = take(batch, s.creates, s.batchLimit)
	return s.gather(batch)
}

// gather holds a small batch of grouped writes only (pipeline.Transition.Grouped: a
// worker's completions, which no job waits for) for more requests, up to gatherWait, so that
// they share one commit. A steady stream of completions otherwise commits in trickles of a
// few writes (3.5 on average in a 0 ms burn-down), each commit paying the WAL frames of every
// page it touched. The wait ends as soon as the batch holds gatherMin requests, a request
// that is not grouped arrives (an accept's create, a claim), or the store closes; the
// requests then waiting join.
func (s *Store) gather(batch []*request) []*request {
	if s.gatherWait <= 0 || len(batch) >= s.gatherMin {
		return batch
	}
	for _, r := range batch {
		if !r.grouped {
			return batch
		}
	}
	s.gatherTimer.Reset(s.gatherWait)
	defer s.gatherTimer.Stop() // a stopped timer's channel holds no stale tick (Go 1.23)
	for len(batch) < s.gatherMin {
		var r *request
		select {
		case r = <-s.creates:
		case r = <-s.reqs:
		case <-s.gatherTimer.C:
			return s.fillUp(batch)
		case <-s.closing:
			return s.fillUp(batch)
		}
		batch = append(batch, r)
		if !r.grouped {
			break
		}
	}
	return s.fillUp(batch)
}

// fillUp adds to batch the requests waiting, creates first, up to the batch limit.
func (s *Store) fillUp(batch []*request) []*request {
	batch = take(batch, s.creates, s.batchLimit)
	return take(batch, s.reqs, s.batchLimit)
}

// stoppedTimer returns a timer that is stopped and will not fire until Reset.
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// take adds to batch the requests waiting in queue until batch holds limit.
func take(batch []*request, queue chan *request, limit int) []*request {
	for len(batch) < limit {
		select {
		case r := <-queue:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// joinLimit is how many creates may join a batch already running, beyond the batch limit.
func (s *Store) joinLimit() int {
	if s.batchLimit <= 1 {
		return 0
	}
	return maxJoin
}

// join adds to a running batch a create that is waiting, if any and if the batch has room
// for joiners: it commits with the batch instead of waiting for it to end.
func (s *Store) join(batch []*request) []*request {
	if len(batch) >= s.batchLimit+s.joinLimit() {
		return batch
	}
	select {
	case r := <-s.creates:
		return append(batch, r)
	default:
		return batch
	}
}

// runBatch runs batch in one transaction and answers every request. Statements run under a
// background context: cancelling one caller must not interrupt the transaction the others share.
//
// A job's write is one write statement (and reads), or a transition and the outbox row of its
// event, and SQLite undoes a failed statement by itself, so the batch first runs those without a
// savepoint per request: two statements fewer per write. A failure other than a conflict or a
// missing job may have rolled back the whole transaction or left half a request written, so
// then the batch is rolled back and run again with each request in its own savepoint, where a
// failing request does not fail the others. The writes of several statements that may fail
// halfway with an answer (see request.multi) run in a savepoint of their own either way.
//
// A create that arrives while the batch runs joins it (see join), so an accept waits for at
// most the rest of one batch. runBatch returns the batch with those joiners.
func (s *Store) runBatch(batch []*request) []*request {
	defer func() { s.answer(batch) }() // the batch as it ends, with the creates that joined it
	batch, ok := s.runTransaction(batch, false)
	if ok {
		return batch
	}
	for _, r := range batch {
		r.out, r.created, r.ids, r.err = messages.JobRecord{}, false, nil, nil
	}
	batch, _ = s.runTransaction(batch, true)
	return batch
}

// answer wakes the callers of batch, those of creates first. Each wakes into the run queue of
// the writer's processor in the order answered, behind what is queued there already: a
// batch's answers ready tens of a worker pool's goroutines at once, and an accept (a create,
// whose HTTP request waits) answered after them waits for all of them to run first. A request
// answered is its caller's again (and may be recycled at once), so each is read before any is
// answered.
func (s *Store) answer(batch []*request) {
	later := s.w.answerLater[:0]
	for _, r := range batch {
		if r.op == opCreate {
			r.done <- struct{}{}
		} else {
			later = append(later, r)
		}
	}
	for i, r := range later {
		r.done <- struct{}{}
		later[i] = nil
	}
	s.w.answerLater = later[:0]
}

// runTransaction runs batch in one transaction, each request in a savepoint of its own when
// isolate is set, and sets every request's answer; without isolate, waiting creates join the
// batch as it runs, and it returns the batch with them. Without isolate it returns false,
// having rolled back, as soon as a request fails in a way that may have ended the transaction;
// the answers are then not to be trusted.
func (s *Store) runTransaction(batch []*request, isolate bool) ([]*request, bool) {
	ctx := context.Background()
	if _, err := s.w.begin.ExecContext(ctx); err != nil {
		err = fmt.Errorf("sqlite store: begin write transaction (another process may hold the database; raise busy_timeout or stop it): %w", err)
		s.log.Error().Err(err).Int("batch_size", len(batch)).Msg("write batch failed")
		for _, r := range batch {
			r.err = err
		}
		return batch, true
	}
	var aborted error
	for i := 0; i < len(batch); i++ {
		r := batch[i]
		switch {
		case aborted != nil:
			r.err = aborted
		case r.ctx.Err() != nil:
			r.err = context.Cause(r.ctx)
		case isolate:
			aborted = s.runRequest(ctx, r)
		default:
			var lost bool
			if n := s.quietRun(batch, i); n > 1 {
				lost = s.applyQuietRun(ctx, batch[i:i+n]) != nil
				i += n - 1
			} else if r.multi() {
				lost = s.runRequest(ctx, r) != nil
			} else {
				s.apply(ctx, r)
				lost = !expected(r.err)
			}
			if lost {
				_, _ = s.w.rollback.ExecContext(ctx)
				return batch, false
			}
			batch = s.join(batch)
		}
	}
	if aborted == nil {
		_, aborted = s.w.commit.ExecContext(ctx)
		if aborted != nil {
			aborted = fmt.Errorf("sqlite store: commit: %w", aborted)
		}
	}
	if aborted == nil {
		s.dirty.Store(true)
		s.commits.Add(1)
	} else {
		_, _ = s.w.rollback.ExecContext(ctx)
		s.log.Error().Err(aborted).Int("batch_size", len(batch)).Msg("write batch rolled back")
		for _, r := range batch {
			r.out, r.created, r.ids, r.err = messages.JobRecord{}, false, nil, aborted
		}
	}
	return batch, true
}

// multi reports whether r runs a function of several write statements that may fail, with an
// answer such as a conflict, after some of them: it always runs in a savepoint of its own.
func (r *request) multi() bool {
	return r.op == opFunc || r.op == opOutbox
}

// expected reports whether err is an answer rather than a failure: none, a conflict or a
// missing job. Such a request changed nothing or exactly what it asked for.
func expected(err error) bool {
	return err == nil || errors.Is(err, pipeline.ErrConflict) || errors.Is(err, pipeline.ErrNotFound)
}

// apply runs r's statements on the writer's transaction and sets its answer.
func (s *Store) apply(ctx context.Context, r *request) {
	switch r.op {
	case opCreate:
		r.out, r.created, r.err = s.create(ctx, r.rec, r.args)
	case opTransition:
		r.out, r.err = s.transition(ctx, r.id, r.tr, r.args)
	case opDelete:
		if _, err := s.w.delete.ExecContext(ctx, r.id); err != nil {
			r.err = fmt.Errorf("sqlite store: delete job %s: %w", r.id, err)
		}
	case opExpire:
		r.ids, r.err = s.expire(ctx, r.before, r.limit)
	case opFunc:
		r.err = r.fn(ctx, s.wconn)
	case opOutbox:
		r.err = r.outbox(ctx, s.wconn)
	case opRead:
		r.out, r.err = scanRecord(s.w.selectByID.QueryRowContext(ctx, r.id))
		if errors.Is(r.err, sql.ErrNoRows) {
			r.err = fmt.Errorf("job %s: %w", r.id, pipeline.ErrNotFound)
		}
	}
}

// runRequest runs r in its own savepoint, undoing it when it fails. It returns an error only
// when the whole transaction can no longer be trusted.
func (s *Store) runRequest(ctx context.Context, r *request) error {
	if _, err := s.w.savepoint.ExecContext(ctx); err != nil {
		return fmt.Errorf("sqlite store: open savepoint: %w", err)
	}
	s.apply(ctx, r)
	if r.err != nil && (r.multi() || !expected(r.err)) {
		// A failed statement may have rolled back the whole transaction; then the savepoint
		// is gone and the batch must fail as one.
		if _, err := s.w.rollbackTo.ExecContext(ctx); err != nil {
			return fmt.Errorf("sqlite store: transaction lost after %w", r.err)
		}
	}
	if _, err := s.w.release.ExecContext(ctx); err != nil {
		return fmt.Errorf("sqlite store: release savepoint: %w", err)
	}
	return nil
}

// create inserts rec unless its id or (tenant, key) is taken, and returns the stored record.
func (s *Store) create(ctx context.Context, rec messages.JobRecord, args []any) (messages.JobRecord, bool, error) {
	res, err := s.w.insert.ExecContext(ctx, args...)
	if err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("sqlite store: insert job %s: %w", rec.JobID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return messages.JobRecord{}, false, fmt.Errorf("sqlite store: insert job %s: %w", rec.JobID, err)
	} else if n == 1 {
		return rec, true, nil
	}
	existing, err := scanRecord(s.w.selectByID.QueryRowContext(ctx, rec.JobID))
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return existing, false, err
	}
	if rec.IdempotencyKey != "" {
		existing, err = scanRecord(s.w.selectByKey.QueryRowContext(ctx, rec.Tenant, rec.IdempotencyKey))
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return existing, false, err
		}
	}
	return messages.JobRecord{}, false, fmt.Errorf("sqlite store: insert of job %s was refused but no job holds its id or idempotency key", rec.JobID)
}

// transitionSQL is pipeline.Transition.Apply as one conditional write that returns the record
// it wrote, with the arguments of appendTransitionArgs: ?1 the new status, ?2 and ?3 the attempts'
// reset and delta, ?4 the model, ?5 to ?7 the JSON usage, guardrail and error (NULL: keep),
// ?8 and ?9 the result URL and replay name, ?10 and ?11 whether to set the model call and
// its JSON, ?12 the update time, ?13 the job, ?14 the statuses it may leave as ",A,B," (empty:
// any not in ?15, the terminal ones).
const transitionSQL = `UPDATE jobs SET
	status = ?1,
	attempts = max(CASE WHEN ?2 THEN 0 ELSE attempts END + ?3, 0),
	model = CASE WHEN ?4 = '' THEN model ELSE ?4 END,
	usage = coalesce(?5, usage),
	guardrail = coalesce(?6, guardrail),
	error = CASE WHEN ?7 IS NOT NULL THEN ?7 WHEN ?1 IN ('QUEUED', 'COMPLETED') THEN NULL ELSE error END,
	result_url = CASE WHEN ?8 = '' THEN result_url ELSE ?8 END,
	replay_name = CASE WHEN ?9 = '' THEN replay_name ELSE ?9 END,
	model_call = CASE WHEN ?10 THEN ?11 ELSE model_call END,
	updated_at = ?12
WHERE job_id = ?13 AND CASE WHEN ?14 = '' THEN instr(?15, ',' || status || ',') = 0 ELSE instr(?14, ',' || status || ',') > 0 END
RETURNING ` + columns

// transitionQuietSQL is transitionSQL returning nothing, for a Transition.Unreturned: reading
// back and decoding the row it wrote was a third of a completion's cost to the writer.
var transitionQuietSQL = strings.TrimSuffix(transitionSQL, "\nRETURNING "+columns)

// terminalStatuses are the statuses a transition with an empty From may not leave, as
// transitionSQL takes them.
var terminalStatuses = func() string {
	s := ","
	for _, st := range []messages.Status{messages.StatusQueued, messages.StatusProcessing, messages.StatusCompleted,
		messages.StatusFailed, messages.StatusCancelled} {
		if st.Terminal() {
			s += string(st) + ","
		}
	}
	return s
}()

// appendTransitionArgs appends tr on job id to dst (a recycled request's) as the arguments of
// transitionSQL, encoded by the caller to keep the writer's work short. A zero tr.At is now.
func appendTransitionArgs(dst []any, id string, tr pipeline.Transition) ([]any, error) {
	part := messages.JobRecord{JobID: id, Usage: tr.Usage, Guardrail: tr.Guardrail, Error: tr.Error}
	if tr.Call != nil {
		tr.Call.ApplyTo(&part)
	}
	cols, err := storecodec.EncodeJSONColumns(part)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	at := tr.At
	if at.IsZero() {
		at = time.Now()
	}
	return append(dst, statusArg(tr.To), tr.ResetAttempts, tr.AttemptsDelta, tr.Model, cols.Usage, cols.Guardrail, cols.Error,
		tr.ResultURL, tr.ReplayName, tr.Call != nil, cols.ModelCall, at.UnixMilli(), id, fromArg(tr.From), terminalStatusesArg), nil
}

// statusArgs are the statuses as transitionSQL's arguments, boxed once (messages.Status order).
var statusArgs = [...]any{string(messages.StatusQueued), string(messages.StatusProcessing), string(messages.StatusCompleted),
	string(messages.StatusFailed), string(messages.StatusCancelled)}

// statusIndex is st's place in statusArgs, or -1.
func statusIndex(st messages.Status) int {
	switch st {
	case messages.StatusQueued:
		return 0
	case messages.StatusProcessing:
		return 1
	case messages.StatusCompleted:
		return 2
	case messages.StatusFailed:
		return 3
	case messages.StatusCancelled:
		return 4
	}
	return -1
}

// statusArg is st as an argument of transitionSQL.
func statusArg(st messages.Status) any {
	if i := statusIndex(st); i >= 0 {
		return statusArgs[i]
	}
	return string(st)
}

// fromArgs are transitionSQL's ?14 for each set of statuses, by the bits of their statusIndex:
// ",A,B," in statusArgs order (transitionSQL looks each status up in it), "" for none.
var fromArgs = func() (args [1 << len(statusArgs)]any) {
	for set := range args {
		from := ""
		for i, st := range statusArgs {
			if set&(1<<i) != 0 {
				from += st.(string) + ","
			}
		}
		if from != "" {
			from = "," + from
		}
		args[set] = from
	}
	return args
}()

// fromArg is from as transitionSQL's ?14.
func fromArg(from []messages.Status) any {
	set := 0
	for _, st := range from {
		i := statusIndex(st)
		if i < 0 { // not a status: it matches no job, as the list it goes in
			s := ","
			for _, st := range from {
				s += string(st) + ","
			}
			return s
		}
		set |= 1 << i
	}
	return fromArgs[set]
}

// terminalStatusesArg is terminalStatuses as an argument, boxed once.
var terminalStatusesArg any = terminalStatuses

// transition applies a transition to job id with one conditional write (transitionSQL,
// arguments from appendTransitionArgs). Only when it changed no row is the job read, to tell a job
// in another status (ErrConflict, with its record) from a missing one.
func (s *Store) transition(ctx context.Context, id string, tr pipeline.Transition, args []any) (messages.JobRecord, error) {
	if tr.Unreturned && tr.EventID == "" {
		res, err := s.w.updateQuiet.ExecContext(ctx, args...)
		if err != nil {
			return messages.JobRecord{}, fmt.Errorf("sqlite store: update job %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return messages.JobRecord{}, err
		}
		return s.refused(ctx, id, tr)
	}
	next, err := scanRecord(s.w.update.QueryRowContext(ctx, args...))
	if err == nil {
		if tr.EventID != "" {
			err = s.recordEvent(ctx, next, tr.EventID)
		}
		return next, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return messages.JobRecord{}, fmt.Errorf("sqlite store: update job %s: %w", id, err)
	}
	return s.refused(ctx, id, tr)
}

// refused answers a transition that changed no row: ErrConflict with the job's record, or
// ErrNotFound.
func (s *Store) refused(ctx context.Context, id string, tr pipeline.Transition) (messages.JobRecord, error) {
	cur, err := scanRecord(s.w.selectByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return messages.JobRecord{}, fmt.Errorf("job %s: %w", id, pipeline.ErrNotFound)
	}
	if err != nil {
		return messages.JobRecord{}, err
	}
	return cur, fmt.Errorf("job %s is %s, not one of %v: %w", id, cur.Status, tr.From, pipeline.ErrConflict)
}
