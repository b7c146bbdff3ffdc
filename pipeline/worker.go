package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
)

// Worker defaults.
const (
	DefaultMaxAttempts = 5
	DefaultJobTimeout  = 10 * time.Minute
	// finalWriteTimeout bounds the store writes that hand a job back at shutdown.
	finalWriteTimeout = 10 * time.Second
)

// WorkerConfig wires a Worker. Store, Results, Router, DeadLetters and Topics are required.
type WorkerConfig struct {
	Store   JobStore
	Results BlobStore
	Router  ModelPicker
	// DeadLetters publishes to Topics.Dead.
	DeadLetters message.Publisher
	Topics      Topics
	// InputGuard and OutputGuard check text before and after the model; nil passes it through.
	InputGuard, OutputGuard Guard
	// Archive keeps every accepted job message for replay; nil keeps none.
	Archive *Archive
	// Inputs fetches s3_uri inputs; nil refuses them.
	Inputs InputFetcher
	// Notifier receives terminal lifecycle events; nil sends none.
	Notifier Notifier
	// Hub announces changes to watchers and lets Cancel stop running jobs; may be nil.
	Hub *Hub
	// Decoder turns a delivery into jobs; nil means DecodeJob (job messages only).
	Decoder Decoder
	// MaxAttempts is how many attempts a job gets before it fails (default 5).
	MaxAttempts int
	// Backoff spaces the attempts (default 1s doubling to 1m, full jitter).
	Backoff Backoff
	// JobTimeout bounds one attempt (default 10m).
	JobTimeout time.Duration
	Metrics    *Metrics
	Logger     zerolog.Logger
}

// Delivery is a message as a transport handed it over.
type Delivery struct {
	// MessageID is the transport's message id.
	MessageID string
	Payload   []byte
	Metadata  map[string]string
}

// Outcome is what the transport should do with a delivery: acknowledge it (the job completed,
// failed for good, or was dropped deliberately) or deliver it again after Delay.
type Outcome struct {
	Retry bool
	Delay time.Duration
	// Reason says why a retry was asked for, for logs.
	Reason string
	// HandedBack marks a Retry that returns a job cut off by shutdown to its queue without
	// spending an attempt: expected at shutdown, not a failure, and summarised by the caller
	// (Worker.HandedBack) rather than logged per delivery.
	HandedBack bool

	// infrastructure marks a retry asked for because infleet's own dependencies failed: the
	// worker keeps counting the job's failures in a row for its backoff.
	infrastructure bool
}

// Decoder turns a delivery into the jobs it carries (a job message is one job; an S3 event may
// be several). An error means the delivery can never become a job: it is dead-lettered.
type Decoder func(d Delivery) ([]messages.Job, error)

// Worker runs job messages through the stages decode, admit, guard-in, route, invoke,
// guard-out, store and notify. Process is safe for concurrent use.
type Worker struct {
	cfg WorkerConfig

	hardStop       context.Context
	cancelHardStop context.CancelFunc
	inFlight       sync.WaitGroup
	handedBack     atomic.Int64

	ledger ledger // infrastructure failures and owed attempts, by job
}

// NewWorker checks cfg, applies defaults and returns a Worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
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
// succeed: such deliveries are dead-lettered and acknowledged.
func (w *Worker) Process(ctx context.Context, d Delivery) Outcome {
	w.inFlight.Add(1)
	defer w.inFlight.Done()
	w.cfg.Metrics.AddInFlight(1)
	defer w.cfg.Metrics.AddInFlight(-1)

	start := time.Now()
	jobs, err := w.cfg.Decoder(d)
	w.cfg.Metrics.StageDone("decode", start)
	if err != nil {
		// The dead-letter place is the only copy of a message that never became a job: it is
		// delivered again until the dead-letter place takes it.
		key := messageKeyPrefix + d.MessageID
		jerr := messages.JobError{Code: messages.ErrCodeInvalidJob, Message: err.Error()}
		if derr := w.deadLetter(ctx, d, jerr, 0, "", ""); derr != nil {
			return w.infraRetry(key, classify(Infrastructure("dead-letter", derr)).jobErr, "dead-letter")
		}
		w.ledger.forget(key)
		return Outcome{}
	}
	ctx = ContextWithTraceparent(ctx, d.Metadata[messages.MetaTraceparent])
	out := Outcome{}
	for i := range jobs {
		o := w.processJob(ctx, d, &jobs[i])
		if o.Retry && (!out.Retry || o.Delay < out.Delay) {
			out = o
		}
	}
	return out
}

// processJob runs one decoded job. What the worker remembers of the job's infrastructure
// failures lasts until a delivery of it gets past them.
func (w *Worker) processJob(ctx context.Context, d Delivery, job *messages.Job) Outcome {
	out := w.runJob(ctx, d, job)
	if !out.infrastructure {
		w.ledger.forget(job.JobID)
	}
	return out
}

func (w *Worker) runJob(ctx context.Context, d Delivery, job *messages.Job) Outcome {
	log := w.cfg.Logger.With().Str("job_id", job.JobID).Str("task", job.Task).Logger()
	if w.hardStop.Err() != nil {
		w.handedBack.Add(1)
		log.Debug().Msg("handed back to the queue unstarted: shutting down")
		return Outcome{Retry: true, Reason: "shutting down", HandedBack: true}
	}

	start := time.Now()
	rec, run, err := w.admit(ctx, job, d)
	w.cfg.Metrics.StageDone("admit", start)
	if err != nil {
		// Nothing was recorded, so nothing was spent.
		return w.infraRetry(job.JobID, classify(Infrastructure("admit", err)).jobErr, "admit")
	}
	if !run {
		return Outcome{}
	}
	w.cfg.Hub.Notify(rec.JobID)
	if rec.Attempts == 1 && job.ReplayName == "" {
		w.archive(d, job, rec)
	}
	if rec.Attempts > w.cfg.MaxAttempts {
		// The job spent its attempts but the outcome of the last one was never recorded: its
		// worker died, or the job store refused the write. It ends here, without another
		// model call, and fail records it with workers.max_attempts attempts, not more.
		jerr := messages.JobError{Code: messages.ErrCodeAttemptsExceeded,
			Message: fmt.Sprintf("the job used its %d attempts (workers.max_attempts) and was delivered again without the last one's outcome recorded (its worker stopped, or the job store could not be written)", w.cfg.MaxAttempts)}
		return w.fail(ctx, d, rec, jerr, nil, true)
	}

	jobCtx, cancelJob := context.WithCancelCause(ctx)
	defer cancelJob(nil)
	stopWatch := context.AfterFunc(w.hardStop, func() { cancelJob(errShutdown) })
	defer stopWatch()
	unregister := w.cfg.Hub.Running(rec.JobID, cancelJob)
	defer unregister()
	attemptCtx, cancelAttempt := context.WithTimeout(jobCtx, w.cfg.JobTimeout)
	defer cancelAttempt()

	res, report, err := w.run(attemptCtx, job, rec)
	if err == nil {
		return w.complete(ctx, d, rec, res, report)
	}

	switch cause := context.Cause(jobCtx); {
	case ctx.Err() != nil || errors.Is(cause, errShutdown):
		return w.handBack(rec, "shutting down")
	case errors.Is(cause, ErrCancelledByUser):
		log.Info().Msg("job cancelled while running")
		return Outcome{}
	}
	if errors.Is(err, context.DeadlineExceeded) && attemptCtx.Err() != nil {
		err = fmt.Errorf("attempt timed out after %s (raise workers.job_timeout for longer jobs): %w", w.cfg.JobTimeout, err)
	}
	v := classify(err)
	if v.infrastructure {
		var infra *InfrastructureError
		errors.As(err, &infra)
		return w.handBackInfra(ctx, rec, v.jobErr, infra.Op)
	}
	var blocked *BlockedError
	if errors.As(err, &blocked) {
		return w.fail(ctx, d, rec, v.jobErr, blocked.Report, false)
	}
	if v.retry && rec.Attempts < w.cfg.MaxAttempts {
		return w.retry(ctx, rec, v.jobErr, v.after)
	}
	jerr := v.jobErr
	if v.retry {
		jerr.Message = fmt.Sprintf("%s (gave up after %d attempts)", jerr.Message, rec.Attempts)
	}
	return w.fail(ctx, d, rec, jerr, report, true)
}

var errShutdown = errors.New("worker shutting down")

// admit makes sure the job has a record and claims it for this attempt. run is false when the
// delivery must be dropped: the job already ended (a duplicate) or was cancelled. The claim
// counts an attempt, unless one is owed back to the job (an attempt cut short by an
// infrastructure failure that could not be handed back): this delivery then takes its place.
func (w *Worker) admit(ctx context.Context, job *messages.Job, d Delivery) (messages.JobRecord, bool, error) {
	delta := 1
	if w.ledger.owes(job.JobID) {
		delta = 0
	}
	start := Transition{
		From:          []messages.Status{messages.StatusQueued, messages.StatusProcessing},
		To:            messages.StatusProcessing,
		AttemptsDelta: delta,
	}
	rec, err := w.cfg.Store.Transition(ctx, job.JobID, start)
	if errors.Is(err, ErrNotFound) {
		// A producer dropped the message straight on the queue: create its record.
		created, cerr := w.createRecord(ctx, job, d)
		if cerr != nil {
			return messages.JobRecord{}, false, cerr
		}
		if created.JobID != job.JobID {
			w.cfg.Logger.Info().Str("job_id", job.JobID).Str("existing_job_id", created.JobID).
				Msg("message repeats an idempotency key already used; dropped")
			return messages.JobRecord{}, false, nil
		}
		rec, err = w.cfg.Store.Transition(ctx, job.JobID, start)
	}
	if errors.Is(err, ErrConflict) {
		if job.ReplayName != "" && job.ReplayName != rec.ReplayName && rec.Status.Terminal() {
			rec, err = w.cfg.Store.Transition(ctx, job.JobID, Transition{
				From:          []messages.Status{rec.Status},
				To:            messages.StatusProcessing,
				ResetAttempts: true,
				AttemptsDelta: 1,
				ReplayName:    job.ReplayName,
			})
			if errors.Is(err, ErrConflict) {
				return rec, false, nil
			}
			if err == nil {
				w.ledger.paid(job.JobID)
			}
			return rec, err == nil, err
		}
		return rec, false, nil
	}
	if err != nil {
		return messages.JobRecord{}, false, err
	}
	w.ledger.paid(job.JobID)
	return rec, true, nil
}

func (w *Worker) createRecord(ctx context.Context, job *messages.Job, d Delivery) (messages.JobRecord, error) {
	job.Priority = job.Priority.OrNormal()
	spec, err := json.Marshal(job)
	if err != nil {
		return messages.JobRecord{}, fmt.Errorf("encode job %s: %w", job.JobID, err)
	}
	rec, created, err := w.cfg.Store.Create(ctx, NewJobRecord(*job, spec, d.Metadata[messages.MetaTenant], time.Now().UTC()))
	if err == nil && created {
		w.cfg.Metrics.JobAccepted(rec.Task, rec.Priority)
	}
	return rec, err
}

// archive keeps the job's message for replay.
func (w *Worker) archive(d Delivery, job *messages.Job, rec messages.JobRecord) {
	if w.cfg.Archive == nil {
		return
	}
	body := rec.Spec
	if len(body) == 0 {
		body, _ = json.Marshal(job)
	}
	md := make(map[string]string, len(d.Metadata))
	for k, v := range d.Metadata {
		switch k {
		case messages.MetaJobID, messages.MetaPriority, messages.MetaTenant, messages.MetaTraceparent:
			md[k] = v
		}
	}
	w.cfg.Archive.Add(ArchiveEntry{AcceptedAt: rec.CreatedAt, JobID: rec.JobID, Task: rec.Task,
		Priority: rec.Priority, Tenant: rec.Tenant, Body: body, Metadata: md})
}

// runResult is what the model stages produced.
type runResult struct {
	model string
	resp  ModelResponse
}

// run executes the stages from guard-in to store. On error the returned report holds what the
// guards did so far.
func (w *Worker) run(ctx context.Context, job *messages.Job, rec messages.JobRecord) (runResult, *messages.GuardrailReport, error) {
	var report *messages.GuardrailReport

	// guard-in
	start := time.Now()
	chat, err := w.inputMessages(ctx, job)
	if err != nil {
		return runResult{}, nil, err
	}
	jc := GuardContext{JobID: job.JobID, Context: job.Context}
	var restore func(string) string
	if w.cfg.InputGuard != nil {
		texts := make([]string, len(chat), len(chat)+1)
		for i, m := range chat {
			texts[i] = m.Content
		}
		if jc.Context != "" {
			texts = append(texts, jc.Context)
		}
		out, err := checkGuard(ctx, w.cfg.InputGuard, GuardInput, texts, jc)
		if err != nil {
			return runResult{}, nil, fmt.Errorf("input guardrail: %w", err)
		}
		report = mergeReport(report, GuardInput, out)
		if out.Blocked {
			return runResult{}, report, &BlockedError{Reason: out.Reason, Report: report}
		}
		for i := range chat {
			chat[i].Content = out.Texts[i]
		}
		if jc.Context != "" {
			jc.Context = out.Texts[len(chat)]
		}
		restore = out.Restore
	}
	jc.Question = lastUserMessage(chat)
	w.cfg.Metrics.StageDone("guard_in", start)

	// route
	model, err := w.cfg.Router.Pick(job)
	if err != nil {
		return runResult{}, report, err
	}

	// invoke
	start = time.Now()
	req := ModelRequest{ModelID: model.ModelID, Task: job.Task, Messages: chat, System: jc.Context, Tenant: rec.Tenant}
	if job.Params != nil {
		req.Params = *job.Params
	}
	resp, err := model.Client.Invoke(ctx, req)
	w.cfg.Metrics.ModelCalled(model.Name, time.Since(start), resp.Usage, err)
	w.cfg.Metrics.StageDone("invoke", start)
	if err != nil {
		return runResult{}, report, fmt.Errorf("model %s: %w", model.Name, err)
	}
	answeredBy := cmp.Or(resp.Model, model.Name)

	// guard-out
	if w.cfg.OutputGuard != nil {
		start = time.Now()
		out, err := checkGuard(ctx, w.cfg.OutputGuard, GuardOutput, []string{resp.Text}, jc)
		if err != nil {
			return runResult{}, report, fmt.Errorf("output guardrail: %w", err)
		}
		report = mergeReport(report, GuardOutput, out)
		if out.Blocked {
			return runResult{}, report, &BlockedError{Reason: out.Reason, Report: report}
		}
		resp.Text = out.Texts[0]
		w.cfg.Metrics.StageDone("guard_out", start)
	}
	if restore != nil {
		resp.Text = restore(resp.Text)
	}

	// store
	start = time.Now()
	body, err := json.Marshal(messages.Result{
		JobID:     rec.JobID,
		Output:    messages.Output{Text: resp.Text},
		Model:     answeredBy,
		Usage:     resp.Usage,
		Guardrail: report,
		Degraded:  resp.Degraded,
		Fallbacks: resp.Fallbacks,
		Prompt:    resp.Prompt,
	})
	if err != nil {
		return runResult{}, report, fmt.Errorf("encode result: %w", err)
	}
	if err := w.cfg.Results.Put(ctx, ResultKey(rec.JobID), body); err != nil {
		if ctx.Err() != nil {
			// The attempt ran out of time or was cancelled while writing: that is the
			// attempt's outcome, not the result store's.
			return runResult{}, report, fmt.Errorf("store result: %w", err)
		}
		return runResult{}, report, Infrastructure("store result", err)
	}
	w.cfg.Metrics.StageDone("store", start)
	return runResult{model: answeredBy, resp: resp}, report, nil
}

// inputMessages turns a job's input into the conversation sent to the model.
func (w *Worker) inputMessages(ctx context.Context, job *messages.Job) ([]messages.ChatMessage, error) {
	switch {
	case len(job.Input.Messages) > 0:
		return append([]messages.ChatMessage(nil), job.Input.Messages...), nil
	case job.Input.S3URI != "":
		if w.cfg.Inputs == nil {
			return nil, Permanent(messages.ErrCodeInvalidJob,
				fmt.Errorf("input.s3_uri needs an object store to read from (configure results.kind: s3) or give input.text"))
		}
		text, err := w.cfg.Inputs.Fetch(ctx, job.Input.S3URI)
		if err != nil {
			return nil, fmt.Errorf("read input %s: %w", job.Input.S3URI, err)
		}
		return []messages.ChatMessage{{Role: "user", Content: text}}, nil
	}
	return []messages.ChatMessage{{Role: "user", Content: job.Input.Text}}, nil
}

// checkGuard runs g, through CheckWithContext when g is a ContextGuard.
func checkGuard(ctx context.Context, g Guard, stage GuardStage, texts []string, jc GuardContext) (GuardOutcome, error) {
	if cg, ok := g.(ContextGuard); ok {
		return cg.CheckWithContext(ctx, stage, texts, jc)
	}
	return g.Check(ctx, stage, texts)
}

// lastUserMessage is the question a conversation ends on, for contextual grounding.
func lastUserMessage(chat []messages.ChatMessage) string {
	for i := len(chat) - 1; i >= 0; i-- {
		if chat[i].Role == "user" {
			return chat[i].Content
		}
	}
	return ""
}

func mergeReport(r *messages.GuardrailReport, stage GuardStage, out GuardOutcome) *messages.GuardrailReport {
	if r == nil {
		r = &messages.GuardrailReport{Action: messages.GuardActionNone}
	}
	if stage == GuardInput {
		r.Input = append(r.Input, out.Assessments...)
	} else {
		r.Output = append(r.Output, out.Assessments...)
	}
	for _, a := range out.Assessments {
		switch {
		case a.Action == messages.GuardActionBlocked:
			r.Action = messages.GuardActionBlocked
		case a.Action == messages.GuardActionAnonymized && r.Action == messages.GuardActionNone:
			r.Action = messages.GuardActionAnonymized
		}
	}
	return r
}
