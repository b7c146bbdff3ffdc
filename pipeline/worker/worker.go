package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// Worker defaults.
const (
	DefaultMaxAttempts = 5
	DefaultJobTimeout  = 10 * time.Minute
	// finalWriteTimeout bounds the store writes that hand a job back at shutdown.
	finalWriteTimeout = 10 * time.Second
)

// Config wires a Worker. Store, Results, Router, DeadLetters and Topics are required.
type Config struct {
	Store   pipeline.JobStore
	Results pipeline.BlobStore
	Router  pipeline.ModelPicker
	// DeadLetters publishes to Topics.Dead.
	DeadLetters message.Publisher
	Topics      pipeline.Topics
	// InputGuard and OutputGuard check text before and after the model; nil passes it through.
	InputGuard, OutputGuard pipeline.Guard
	// Archive keeps every accepted job message for replay; nil keeps none.
	Archive *ops.Archive
	// Inputs fetches s3_uri inputs; nil refuses them.
	Inputs pipeline.InputFetcher
	// Notifier receives terminal lifecycle events; nil sends none.
	Notifier pipeline.Notifier
	// Outbox, when set, makes the events go through the job store's outbox instead: the
	// transition that ends a job keeps its event in the same write (Transition.EventID), Outbox
	// is woken, and a dispatcher (pipeline/events) delivers it at least once; Notifier is then
	// not called. Set it only when Store is a pipeline.Outbox.
	Outbox pipeline.OutboxWaker
	// Hub announces changes to watchers and lets Cancel stop running jobs; it also carries the
	// answers of streaming jobs to their followers. May be nil.
	Hub *pipeline.Hub
	// StreamFrom is the base URL at which other processes reach this process's stream relay
	// route; the claim of a streaming job records it, so the API of any process relays the
	// job's deltas from here. Empty records none: only this process's API sees the deltas.
	StreamFrom string
	// BatchInference takes the jobs it wants to batch inference; nil sends none.
	BatchInference BatchInference
	// Decoder turns a delivery into jobs; nil means DecodeJob (job messages only).
	Decoder Decoder
	// MaxAttempts is how many attempts a job gets before it fails (default 5).
	MaxAttempts int
	// Concurrency bounds the jobs running their stages from the input guard to the stored
	// result at once; 0 leaves them bounded only by the deliveries handed in. A job takes its
	// place once claimed and gives it up as soon as its result is handed to the result store,
	// so the records that claim jobs and settle them never keep a place from the next job:
	// the transport may hand in more deliveries than Concurrency, to be claimed or settled
	// meanwhile. Jobs take free places in the order they were claimed.
	Concurrency int
	// Backoff spaces the attempts (default 1s doubling to 1m, full jitter).
	Backoff pipeline.Backoff
	// JobTimeout bounds one attempt (default 10m).
	JobTimeout time.Duration
	// ClaimAfter defers the claim of a job on its message's first delivery (the transport says
	// so with messages.MetaDeliveryCount "1"): instead of recording PROCESSING and the attempt
	// before the job runs, the worker reads the record, runs the job, and records the claim
	// only if the job is still running ClaimAfter after it took its place. A job done sooner is
	// recorded once, COMPLETED with its attempt counted, by one write instead of two. Any other
	// outcome records the claim first and then settles as a claimed job does. Zero claims every
	// job before it runs. Redeliveries, streamed, replayed and batch inference jobs are always
	// claimed before they run. A process that dies while a deferred job runs leaves its
	// attempt uncounted: the redelivery (not a first delivery) is claimed before it runs.
	ClaimAfter time.Duration
	// ClaimEagerUntil, when later than now, claims every job before it runs, whatever
	// ClaimAfter says: set after an unclean stop, when the transport's delivery counts may
	// have lost their last moments (see the embedded transport's wiring).
	ClaimEagerUntil time.Time
	Metrics         *telemetry.Metrics
	// Tracer makes a span for each delivery (a consumer span, the child of the span that
	// published the message when its traceparent says which), its queue wait and every stage;
	// nil makes none, and the message's traceparent is still sent on to model providers.
	Tracer trace.Tracer
	Logger zerolog.Logger
}

// Worker runs job messages through the stages decode, admit, guard-in, route, invoke,
// guard-out, store, record and notify. Process is safe for concurrent use.
type Worker struct {
	cfg Config

	hardStop       context.Context
	cancelHardStop context.CancelFunc
	inFlight       sync.WaitGroup
	handedBack     atomic.Int64

	ledger ledger // infrastructure failures and owed attempts, by job

	// cancels is the store's cancel log, for jobs that run unread (unread.go); nil when the
	// store keeps none, the result store cannot tell whether a result exists, or claims are
	// not deferred.
	cancels *cancelWatch

	// places bounds the jobs between claim and stored result (Config.Concurrency); nil
	// means no bound. Its waiters are served first come, first served.
	places *semaphore.Weighted
}

// New checks cfg, applies defaults and returns a Worker.
func New(cfg Config) (*Worker, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("worker: no job store configured (set store.kind)"))
	}
	if cfg.Results == nil {
		errs = append(errs, errors.New("worker: no result store configured (set results.kind)"))
	}
	if cfg.Router == nil {
		errs = append(errs, errors.New("worker: no models configured (set models and routes)"))
	}
	if cfg.DeadLetters == nil {
		errs = append(errs, errors.New("worker: no dead-letter publisher configured (set transport.kind)"))
	}
	if err := cfg.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	cfg.JobTimeout = cmpDuration(cfg.JobTimeout, DefaultJobTimeout)
	if cfg.Decoder == nil {
		cfg.Decoder = DecodeJob
	}
	w := &Worker{cfg: cfg}
	if cl, ok := cfg.Store.(pipeline.CancelLog); ok && cfg.ClaimAfter > 0 {
		if _, ok := cfg.Results.(pipeline.BlobStatter); ok {
			w.cancels = &cancelWatch{log: cl}
		}
	}
	if cfg.Concurrency > 0 {
		w.places = semaphore.NewWeighted(int64(cfg.Concurrency))
	}
	w.hardStop, w.cancelHardStop = context.WithCancel(context.Background())
	return w, nil
}

// CancelInFlight is the second, less graceful stage of shutdown: every running attempt is
// stopped and handed back to its queue without spending an attempt. Processing after it
// hands every delivery back at once.
func (w *Worker) CancelInFlight() { w.cancelHardStop() }

// HandedBack returns how many jobs the worker has handed back to their queue at shutdown,
// without spending an attempt, since it was made: the figure of the shutdown summary. Safe for
// concurrent use.
func (w *Worker) HandedBack() int64 { return w.handedBack.Load() }

// Wait blocks until no delivery is being processed or ctx ends, and reports whether it drained.
func (w *Worker) Wait(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { w.inFlight.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Process runs one delivery to an outcome. It never returns Retry for a delivery that can never
// succeed: such deliveries are dead-lettered and acknowledged. A delivery whose jobs were
// handed to the archive is acknowledged only once their archive writes returned: Process
// waits for them, unless ctx is that of a message handed out by a Scheduler with held acks
// (SchedulerConfig.HeldAcks): it then returns as soon as the outcomes are recorded, and the
// Scheduler acks the message once the writes returned, or nacks it when one failed.
func (w *Worker) Process(ctx context.Context, d Delivery) Outcome {
	growStack()
	w.inFlight.Add(1)
	defer w.inFlight.Done()
	w.cfg.Metrics.AddInFlight(1)
	defer w.cfg.Metrics.AddInFlight(-1)

	ctx, span := w.startDelivery(ctx, d)
	defer span.End()
	start := time.Now()
	_, decodeSpan := pipeline.StartSpan(ctx, "decode", trace.SpanKindInternal)
	jobs, err := w.cfg.Decoder(d)
	pipeline.EndSpan(decodeSpan, err)
	w.cfg.Metrics.StageDone("decode", start)
	if len(jobs) == 1 && span.IsRecording() {
		span.SetAttributes(attribute.String("infleet.job_id", jobs[0].JobID), attribute.String("infleet.task", jobs[0].Task))
	}
	if err != nil {
		// The dead-letter place is the only copy of a message that never became a job: it is
		// delivered again until the dead-letter place takes it.
		key := messageKeyPrefix + d.MessageID
		jerr := messages.JobError{Code: messages.ErrCodeInvalidJob, Message: err.Error()}
		if derr := w.deadLetter(ctx, d, jerr, 0, "", ""); derr != nil {
			return w.infraRetry(key, classify(pipeline.Infrastructure("dead-letter", derr)).jobErr, "dead-letter")
		}
		w.ledger.forget(key)
		return Outcome{}
	}
	out := Outcome{}
	var archived []archiveWait
	for i := range jobs {
		o := w.processJob(ctx, d, &jobs[i])
		if archived == nil {
			archived = o.archived // one job's, as it is
		} else {
			archived = append(archived, o.archived...)
		}
		if o.Retry && (!out.Retry || o.Delay < out.Delay) {
			out = o
		}
	}
	if out.Retry {
		// A delivery asked for again is not acknowledged: its archive writes need no wait,
		// and those of its jobs that got past the infrastructure are done with it.
		for _, a := range archived {
			w.ledger.forget(a.jobID)
		}
		return out
	}
	if len(archived) == 0 {
		return out
	}
	if hold := ackHoldFromContext(ctx); hold != nil {
		// The Scheduler acknowledges the message once the writes returned; the handler, and
		// with it a place for the next message, is free now.
		hold.leave(w, archived)
		return out
	}
	return w.awaitArchive(ctx, archived)
}

// processJob runs one decoded job. What the worker remembers of the job's infrastructure
// failures lasts until a delivery of it gets past them (for a job handed to the archive,
// until its archive write returned).
func (w *Worker) processJob(ctx context.Context, d Delivery, job *messages.Job) Outcome {
	out := w.runJob(ctx, d, job)
	if !out.infrastructure && len(out.archived) == 0 {
		w.ledger.forget(job.JobID)
	}
	return out
}

// runJob runs one job through admission (admit), the model stages (run) and the record of
// the attempt's outcome: complete when it succeeded; otherwise handed back when shutdown or a
// cancellation cut it off, or settled by what its error means.
func (w *Worker) runJob(ctx context.Context, d Delivery, job *messages.Job) (out Outcome) {
	var archived *ops.ArchiveWrite
	defer func() {
		if archived != nil && !out.Retry {
			// The message is acknowledged only once the write returned (Process waits).
			out.archived = []archiveWait{{jobID: job.JobID, write: archived}}
		}
	}()
	// The job's logger is made only when something is logged: most jobs log nothing here.
	log := func() *zerolog.Logger {
		l := w.cfg.Logger.With().Str("job_id", job.JobID).Str("task", job.Task).Ctx(ctx).Logger()
		return &l
	}
	if w.hardStop.Err() != nil {
		w.handedBack.Add(1)
		log().Debug().Msg("handed back to the queue unstarted: shutting down")
		return Outcome{Retry: true, Reason: "shutting down", HandedBack: true}
	}

	if held, err := w.heldByBatch(ctx, job); err != nil {
		return w.infraRetry(job.JobID, classify(pipeline.Infrastructure("batch lookup", err)).jobErr, "batch lookup")
	} else if held {
		log().Debug().Msg("delivery of a job a batch holds; dropped")
		return Outcome{}
	}

	start := time.Now()
	_, admitSpan := pipeline.StartSpan(ctx, "admit", trace.SpanKindInternal)
	rec, run, claim, err := w.admit(ctx, job, d)
	defer claim.settle()
	pipeline.EndSpan(admitSpan, err)
	w.cfg.Metrics.StageDone("admit", start)
	if perm, ok := errors.AsType[*pipeline.PermanentError](err); ok {
		return w.unrecordable(ctx, d, job, perm)
	}
	if err != nil {
		// Nothing was recorded, so nothing was spent.
		return w.infraRetry(job.JobID, classify(pipeline.Infrastructure("admit", err)).jobErr, "admit")
	}
	if job.ReplayName == "" && rec.JobID != "" {
		// Every delivery of an accepted job is archived, a duplicate's too: a delivery that
		// comes again may be the redelivery of one whose worker died before its archive write
		// (replays read the newest entry of each job once).
		archived = w.archive(d, job, rec)
	}
	if !run {
		return Outcome{}
	}
	if rec.Attempts == 1 {
		w.queueWait(ctx, d, rec.JobID)
	}
	w.cfg.Hub.Notify(rec.JobID)
	if rec.Attempts > w.cfg.MaxAttempts {
		return w.attemptsSpent(ctx, d, &rec)
	}

	jobCtx, cancelJob := context.WithCancelCause(ctx)
	defer cancelJob(nil)
	stopWatch := context.AfterFunc(w.hardStop, func() { cancelJob(errShutdown) })
	defer stopWatch()
	unregister := w.cfg.Hub.Running(rec.JobID, cancelJob)
	defer unregister()

	res, report, err := w.runInPlace(jobCtx, job, rec, claim)
	if err == nil {
		return w.complete(ctx, d, rec, res, report, claim)
	}
	if errors.Is(err, errInBatch) {
		return Outcome{}
	}
	return w.runFailed(ctx, context.Cause(jobCtx), d, &rec, claim, report, err, log)
}

// The outcomes of runJob's rare branches are methods of their own, so that their locals are
// not in the frame of runJob, which is on the stack of every job's run: the run then fits the
// stack reserve (growstack.go) with room to spare.

// unrecordable ends a job whose record the store will never take (a message dropped on a queue
// that is too large for it): no retry can help, so its message goes to the dead-letter place.
//
//go:noinline
func (w *Worker) unrecordable(ctx context.Context, d Delivery, job *messages.Job, perm *pipeline.PermanentError) Outcome {
	jerr := messages.JobError{Code: perm.Code, Message: perm.Error()}
	key := messageKeyPrefix + d.MessageID
	if derr := w.deadLetter(ctx, d, jerr, 0, job.JobID, job.Task); derr != nil {
		return w.infraRetry(key, classify(pipeline.Infrastructure("dead-letter", derr)).jobErr, "dead-letter")
	}
	w.ledger.forget(key)
	return Outcome{}
}

// attemptsSpent ends a job that spent its attempts but whose last outcome was never recorded:
// its worker died, or the job store refused the write. It ends without another model call,
// and fail records it with workers.max_attempts attempts, not more.
//
//go:noinline
func (w *Worker) attemptsSpent(ctx context.Context, d Delivery, rec *messages.JobRecord) Outcome {
	jerr := messages.JobError{Code: messages.ErrCodeAttemptsExceeded,
		Message: fmt.Sprintf("the job used its %d attempts (workers.max_attempts) and was delivered again without the last one's outcome recorded (its worker stopped, or the job store could not be written)", w.cfg.MaxAttempts)}
	return w.fail(ctx, d, *rec, jerr, nil, true)
}

// runFailed is the outcome of a run that ended in err, the job's context having ended with
// cause (nil when it had not): shutting down, cancelled, or a failure to settle.
//
//go:noinline
func (w *Worker) runFailed(ctx context.Context, cause error, d Delivery, rec *messages.JobRecord, claim *deferredClaim,
	report *messages.GuardrailReport, err error, log func() *zerolog.Logger) Outcome {
	switch {
	case ctx.Err() != nil || errors.Is(cause, errShutdown):
		if !claim.settle() {
			// Nothing recorded the attempt: the delivery goes back as it came.
			w.handedBack.Add(1)
			log().Debug().Msg("handed back to the queue unclaimed: shutting down")
			return Outcome{Retry: true, Reason: "shutting down", HandedBack: true}
		}
		return w.handBack(*rec, "shutting down")
	case errors.Is(cause, pipeline.ErrCancelledByUser):
		claim.settle()
		// The cancel may have cut off a result write that still landed.
		w.dropCancelledResult(ctx, rec.JobID)
		log().Info().Msg("job cancelled while running")
		return Outcome{}
	}
	claimed, out, ok := w.claimNow(ctx, *rec, claim)
	if !ok {
		return out
	}
	return w.settle(ctx, d, claimed, report, err)
}

// runInPlace runs the model stages of a claimed job once a place is free (Config.Concurrency)
// and gives the place up as soon as they end, before the outcome is recorded. The attempt's
// time (workers.job_timeout) counts from when it has its place. An error from jobCtx ending
// while it waits is that context's error.
//
// A deferred claim's timer starts once the job has its place.
func (w *Worker) runInPlace(jobCtx context.Context, job *messages.Job, rec messages.JobRecord, claim *deferredClaim) (runResult, *messages.GuardrailReport, error) {
	if w.places != nil && !w.batchable(job) {
		// A job bound for batch inference waits for its batch without a place.
		start := time.Now()
		_, span := pipeline.StartSpan(jobCtx, "wait", trace.SpanKindInternal)
		err := w.places.Acquire(jobCtx, 1)
		pipeline.EndSpan(span, err)
		if err != nil {
			return runResult{}, nil, err
		}
		defer w.places.Release(1)
		w.cfg.Metrics.StageDone("wait", start)
	}
	claim.arm()
	attemptCtx, cancelAttempt := context.WithTimeout(jobCtx, w.cfg.JobTimeout)
	defer cancelAttempt()
	res, report, err := w.run(attemptCtx, job, rec)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && attemptCtx.Err() != nil && jobCtx.Err() == nil {
		err = fmt.Errorf("attempt timed out after %s (raise workers.job_timeout for longer jobs): %w", w.cfg.JobTimeout, err)
	}
	return res, report, err
}

var errShutdown = errors.New("worker shutting down")

// cmpDuration is d, or def when d is not positive.
func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
