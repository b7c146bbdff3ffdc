// Package batchinf sends jobs to a provider's batch inference (Amazon Bedrock's model
// invocation jobs: JSONL records in S3 in, JSONL records in S3 out) and follows the batches
// until every job of them has ended.
//
// A Batches collects the requests of the jobs it takes (Takes: their task or priority) for
// MaxWait; a group of at least MinRecords is written as the batch's input, recorded in the job
// store (pipeline.BatchStore) with its jobs, and only then are the jobs' deliveries let go:
// from there on the job waits in the store, not the queue. A group too small goes on demand.
//
// Run, in every worker process, follows the batches: it claims those whose lease ran out or
// are its own (so one process follows a batch at a time, and a restarted fleet takes over
// the batches of a killed process), creates the provider's job (with the batch id as the
// client token, so a creation retried after a crash makes no second job), polls it, and when
// it ends hands each job to a Finisher: with the answer of its output record, or, when its
// record failed or the whole provider job failed, expired or was stopped, for an on-demand
// call. A batch is DONE once every job of it has ended.
package batchinf

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// Defaults.
const (
	DefaultMinRecords   = 100
	DefaultMaxRecords   = 10_000
	DefaultMaxWait      = time.Minute
	DefaultPollInterval = 30 * time.Second
	// DefaultBatchShare is the batch price as a share of the on-demand price when no batch
	// price is configured (Bedrock's batch inference costs half the on-demand price).
	DefaultBatchShare = 0.5
	// claimLimit is how many batches one claim takes.
	claimLimit = 32
)

// Provider statuses that end a provider job (Bedrock's).
const (
	StatusCompleted          = "Completed"
	StatusPartiallyCompleted = "PartiallyCompleted"
	StatusFailed             = "Failed"
	StatusStopped            = "Stopped"
	StatusExpired            = "Expired"
)

// Ended reports whether a provider status is final.
func Ended(status string) bool {
	switch status {
	case StatusCompleted, StatusPartiallyCompleted, StatusFailed, StatusStopped, StatusExpired:
		return true
	}
	return false
}

// answered reports whether a provider job that ended with status has output records.
func answered(status string) bool {
	return status == StatusCompleted || status == StatusPartiallyCompleted
}

// Record is one request of a batch; ID is the job id.
type Record struct {
	ID      string
	Request pipeline.ModelRequest
}

// Output is what a provider answered for one record: a response, or Err when the record
// failed.
type Output struct {
	Response pipeline.ModelResponse
	Err      error
}

// Provider is the provider's batch inference. Implementations are safe for concurrent use.
type Provider interface {
	// WriteInput writes records as the batch input at uri (s3://bucket/key), replacing it.
	WriteInput(ctx context.Context, uri string, records []Record) error
	// Create creates the provider's job over b's input and output for b.ModelID, named after
	// b.ID and with b.ID as the idempotency token: creating it again returns the same job's
	// ARN. An error that is a *pipeline.ModelError of a kind that is not retryable means the
	// provider will never take it.
	Create(ctx context.Context, b pipeline.Batch) (arn string, err error)
	// Status returns the provider job's status and its message.
	Status(ctx context.Context, arn string) (status, message string, err error)
	// ReadOutput returns the output records of b's ended job by record id. Records missing
	// from the map were not answered.
	ReadOutput(ctx context.Context, b pipeline.Batch) (map[string]Output, error)
}

// Finisher ends the jobs of a batch whose provider job ended: the worker.
type Finisher interface {
	// FinishBatched ends job id from answer (its output record), or with an on-demand call
	// when answer is nil. done is false when the job has not ended yet (an on-demand call
	// failed and will be tried again); err reports what kept it from being settled at all.
	// A job that already ended is done.
	FinishBatched(ctx context.Context, id string, answer *pipeline.ModelResponse) (done bool, err error)
}

// Price is a price in US dollars per million tokens.
type Price struct {
	InputPerMTok, OutputPerMTok float64
}

// Cost returns the price of in input and out output tokens.
func (p Price) Cost(in, out int) float64 {
	return (float64(in)*p.InputPerMTok + float64(out)*p.OutputPerMTok) / 1e6
}

// Config wires a Batches. Store, Jobs, Provider, Model, ModelID and Bucket are required.
type Config struct {
	Store    pipeline.BatchStore
	Jobs     pipeline.JobStore
	Provider Provider
	// Model is the configured model the batches go to; ModelID its provider id.
	Model, ModelID string
	// Tasks and Priority say which jobs are taken: those of a task in Tasks, and every job of
	// Priority when it is set.
	Tasks    []string
	Priority messages.Priority
	// MinRecords is the fewest records a batch is sent with; a smaller group goes on demand.
	// Default DefaultMinRecords.
	MinRecords int
	// MaxRecords sends a group at once when it holds this many. Default DefaultMaxRecords.
	MaxRecords int
	// MaxWait is how long a group collects after its first request. Default DefaultMaxWait.
	MaxWait time.Duration
	// Bucket and Prefix say where the batches' input and output go:
	// s3://Bucket/Prefix{batch id}/input.jsonl and .../output/.
	Bucket, Prefix string
	// PollInterval spaces the polls of the provider's jobs and the claims of batches.
	// Default DefaultPollInterval.
	PollInterval time.Duration
	// LeaseTTL is how long a claim holds a batch. Default 5 poll intervals, at least 1s.
	LeaseTTL time.Duration
	// Price is the batch price, recorded as the cost of the jobs answered by a batch.
	Price Price
	// Owner names this process in leases. Default hostname-pid-random.
	Owner string
	// Metrics, when set, counts the batches and their jobs (infleet_batch_inference_*).
	Metrics *telemetry.Metrics
	Logger  zerolog.Logger
}

// Batches collects jobs into batches and follows them. It is safe for concurrent use.
type Batches struct {
	cfg   Config
	tasks map[string]bool
	kick  chan struct{}

	mu    sync.Mutex
	group *group
	// settled holds, per batch this process finishes, the jobs already counted as settled,
	// so that a job is counted once however many polls its batch takes to finish.
	settled map[string]map[string]bool
}

type group struct {
	items []*item
	timer *time.Timer
}

type item struct {
	rec Record
	// done has one channel per Add of the job: a delivery seen again while its group
	// collects waits with the first instead of adding a second record.
	done []chan error
}

// ErrTooFew is the answer of Add when its group held fewer than MinRecords at MaxWait: the job
// runs on demand.
var ErrTooFew = errors.New("too few jobs for a batch (batch_inference.min_records) within batch_inference.max_wait; running on demand")

// New checks cfg, applies the defaults and returns a Batches.
func New(cfg Config) (*Batches, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("batch inference: the job store keeps no batches (use store.kind sqlite, postgres or dynamodb)"))
	}
	if cfg.Jobs == nil || cfg.Provider == nil {
		errs = append(errs, errors.New("batch inference: no job store or provider"))
	}
	if cfg.Model == "" || cfg.ModelID == "" {
		errs = append(errs, errors.New("batch inference: no model (set batch_inference.model to a bedrock model)"))
	}
	if cfg.Bucket == "" {
		errs = append(errs, errors.New("batch inference: no bucket (set batch_inference.bucket)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.MinRecords = cmp.Or(max(cfg.MinRecords, 0), DefaultMinRecords)
	cfg.MaxRecords = max(cmp.Or(max(cfg.MaxRecords, 0), DefaultMaxRecords), cfg.MinRecords)
	cfg.MaxWait = cmp.Or(max(cfg.MaxWait, 0), DefaultMaxWait)
	cfg.PollInterval = cmp.Or(max(cfg.PollInterval, 0), DefaultPollInterval)
	cfg.LeaseTTL = cmp.Or(max(cfg.LeaseTTL, 0), max(5*cfg.PollInterval, time.Second))
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64()>>40, 36)
	}
	b := &Batches{cfg: cfg, tasks: map[string]bool{}, kick: make(chan struct{}, 1), settled: map[string]map[string]bool{}}
	for _, t := range cfg.Tasks {
		b.tasks[t] = true
	}
	return b, nil
}

// Takes reports whether job goes to batch inference: its task is one of Tasks or its
// priority is Priority, it names no other model, and it is not a replay (replays run on
// demand).
func (b *Batches) Takes(job *messages.Job) bool {
	if job.ReplayName != "" || (job.Model != "" && job.Model != b.cfg.Model) {
		return false
	}
	return b.tasks[job.Task] || (b.cfg.Priority != "" && job.Priority.OrNormal() == b.cfg.Priority)
}

// Holds reports whether job id belongs to a recorded batch: a delivery of it is then a
// duplicate, the batch ends it.
func (b *Batches) Holds(ctx context.Context, id string) (bool, error) {
	batch, err := b.cfg.Store.BatchOfJob(ctx, id)
	if errors.Is(err, pipeline.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := b.cfg.Store.GetBatch(ctx, batch); errors.Is(err, pipeline.ErrNotFound) {
		return false, nil // its creation never finished
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// Add puts job id's request in the group being collected and waits until the group is sent.
// nil means the batch holding the job is recorded: the job is the batch's now, and its
// delivery may be acknowledged. An error means it is not (ErrTooFew, or the input or the
// record could not be written, or ctx ended): the job runs on demand.
func (b *Batches) Add(ctx context.Context, id string, req pipeline.ModelRequest) error {
	req.ModelID = b.cfg.ModelID
	done := make(chan error, 1)
	b.mu.Lock()
	g := b.group
	if g == nil {
		g = &group{}
		b.group = g
		g.timer = time.AfterFunc(b.cfg.MaxWait, func() { b.flush(g) })
	}
	full := false
	if i := slices.IndexFunc(g.items, func(it *item) bool { return it.rec.ID == id }); i >= 0 {
		g.items[i].done = append(g.items[i].done, done)
	} else {
		g.items = append(g.items, &item{rec: Record{ID: id, Request: req}, done: []chan error{done}})
		full = len(g.items) >= b.cfg.MaxRecords
	}
	b.mu.Unlock()
	if full {
		go b.flush(g)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// flush sends g, once: it detaches it, writes its input and records the batch.
func (b *Batches) flush(g *group) {
	b.mu.Lock()
	if b.group != g {
		b.mu.Unlock()
		return
	}
	b.group = nil
	g.timer.Stop()
	b.mu.Unlock()

	release := func(err error) {
		for _, it := range g.items {
			for _, done := range it.done {
				done <- err
			}
		}
	}
	if len(g.items) < b.cfg.MinRecords {
		b.cfg.Logger.Debug().Int("records", len(g.items)).Int("min_records", b.cfg.MinRecords).Msg("batch too small; its jobs run on demand")
		release(ErrTooFew)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := pipeline.NewJobID()
	batch := pipeline.Batch{
		ID: id, Model: b.cfg.Model, ModelID: b.cfg.ModelID,
		InputURI:  "s3://" + b.cfg.Bucket + "/" + b.cfg.Prefix + id + "/input.jsonl",
		OutputURI: "s3://" + b.cfg.Bucket + "/" + b.cfg.Prefix + id + "/output/",
		State:     pipeline.BatchSubmitting, Owner: b.cfg.Owner, LeaseUntil: time.Now().Add(b.cfg.LeaseTTL),
	}
	records := make([]Record, len(g.items))
	for i, it := range g.items {
		records[i] = it.rec
		batch.JobIDs = append(batch.JobIDs, it.rec.ID)
	}
	if err := b.cfg.Provider.WriteInput(ctx, batch.InputURI, records); err != nil {
		b.cfg.Logger.Warn().Err(err).Str("batch_id", id).Msg("batch input not written; its jobs run on demand")
		release(fmt.Errorf("write the batch input: %w", err))
		return
	}
	if err := b.cfg.Store.CreateBatch(ctx, batch); err != nil {
		b.cfg.Logger.Warn().Err(err).Str("batch_id", id).Msg("batch not recorded; its jobs run on demand")
		release(fmt.Errorf("record the batch: %w", err))
		return
	}
	b.cfg.Logger.Info().Str("batch_id", id).Int("records", len(records)).Str("model", b.cfg.Model).Msg("batch recorded")
	b.cfg.Metrics.BatchRecorded(len(records))
	release(nil)
	b.Kick()
}

// Kick makes Run look at the batches now rather than at its next poll.
func (b *Batches) Kick() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Run follows the batches until ctx ends: every PollInterval (or at once after a Kick) it
// claims its own batches and those whose lease ran out and takes each a step further.
func (b *Batches) Run(ctx context.Context, f Finisher) {
	t := time.NewTicker(b.cfg.PollInterval)
	defer t.Stop()
	for {
		b.Reconcile(ctx, f)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		}
	}
}

// Reconcile claims the batches due and takes each a step further; what fails is logged and
// tried again at the next call.
func (b *Batches) Reconcile(ctx context.Context, f Finisher) {
	now := time.Now()
	claimed, err := b.cfg.Store.ClaimBatches(ctx, b.cfg.Owner, now, now.Add(b.cfg.LeaseTTL), claimLimit)
	if err != nil {
		if ctx.Err() == nil {
			b.cfg.Logger.Warn().Err(err).Msg("claim batches failed; trying again at the next poll")
		}
		return
	}
	followed, waiting := 0, 0
	for _, batch := range claimed {
		if ctx.Err() != nil {
			return
		}
		pending, err := b.step(ctx, f, batch)
		if err != nil && ctx.Err() == nil {
			b.cfg.Logger.Warn().Err(err).Str("batch_id", batch.ID).Str("state", string(batch.State)).Msg("batch step failed; trying again at the next poll")
		}
		if pending > 0 {
			followed++
			waiting += pending
		}
	}
	b.cfg.Metrics.BatchesFollowed(followed, waiting)
}

// step takes batch from its state as far as it can go now. pending is how many of its jobs
// still wait: none once it is DONE.
func (b *Batches) step(ctx context.Context, f Finisher, batch pipeline.Batch) (pending int, err error) {
	pending = len(batch.JobIDs)
	log := b.cfg.Logger.With().Str("batch_id", batch.ID).Logger()
	if batch.State == pipeline.BatchSubmitting {
		arn, err := b.cfg.Provider.Create(ctx, batch)
		var me *pipeline.ModelError
		switch {
		case errors.As(err, &me) && !me.Kind.Retryable():
			log.Warn().Err(err).Msg("the provider refused the batch job; its jobs run on demand")
			batch.State, batch.Status = pipeline.BatchEnded, StatusFailed
		case err != nil:
			return pending, fmt.Errorf("create the batch job: %w", err)
		default:
			batch.ARN, batch.State, batch.Status = arn, pipeline.BatchSubmitted, "Submitted"
			log.Info().Str("batch_job", arn).Int("records", len(batch.JobIDs)).Msg("batch job created")
		}
		if err := b.update(ctx, &batch); err != nil {
			return pending, err
		}
		if batch.ARN != "" {
			b.cfg.Metrics.BatchSubmitted()
			if err := b.markJobs(ctx, &batch); err != nil {
				return pending, err
			}
		} else {
			b.cfg.Metrics.BatchEnded(batch.Status)
		}
	}
	if batch.State == pipeline.BatchSubmitted {
		status, msg, err := b.cfg.Provider.Status(ctx, batch.ARN)
		if err != nil {
			return pending, fmt.Errorf("poll batch job %s: %w", batch.ARN, err)
		}
		if status != batch.Status || Ended(status) {
			changed := status != batch.Status
			batch.Status = status
			if Ended(status) {
				batch.State = pipeline.BatchEnded
				log.Info().Str("batch_job", batch.ARN).Str("status", status).Str("message", msg).Msg("batch job ended")
			}
			if err := b.update(ctx, &batch); err != nil {
				return pending, err
			}
			if batch.State == pipeline.BatchEnded {
				b.cfg.Metrics.BatchEnded(status)
			}
			if changed {
				if err := b.markJobs(ctx, &batch); err != nil {
					return pending, err
				}
			}
		}
	}
	if batch.State == pipeline.BatchEnded {
		return b.finish(ctx, f, batch)
	}
	return pending, nil
}

// markJobs writes the provider job's ARN and status on each job of batch still running, in
// state RUNNING, so that its record shows which batch job holds it and how far that got. It
// runs when the job is created and at each change of its status, renewing the batch's lease
// as it goes (a large batch takes a while); it fails only when the lease went to another
// process. Best effort otherwise: a job not marked is finished all the same.
func (b *Batches) markJobs(ctx context.Context, batch *pipeline.Batch) error {
	call := &pipeline.ModelCall{BatchJob: batch.ARN, Batch: batchOf(*batch, messages.BatchRunning)}
	renewed := time.Now()
	for _, id := range batch.JobIDs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(renewed) > b.cfg.LeaseTTL/3 {
			if err := b.update(ctx, batch); err != nil {
				return err
			}
			renewed = time.Now()
		}
		_, err := b.cfg.Jobs.Transition(ctx, id, pipeline.Transition{
			From: []messages.Status{messages.StatusProcessing}, To: messages.StatusProcessing, Call: call,
		})
		if err != nil && !errors.Is(err, pipeline.ErrConflict) {
			b.cfg.Logger.Warn().Err(err).Str("job_id", id).Str("batch_id", batch.ID).Msg("job not marked with its batch job")
		}
	}
	return nil
}

// finish hands every job of an ended batch to f, and marks the batch DONE once all ended.
// pending is how many jobs have not ended yet.
func (b *Batches) finish(ctx context.Context, f Finisher, batch pipeline.Batch) (pending int, err error) {
	pending = len(batch.JobIDs)
	var outputs map[string]Output
	if answered(batch.Status) {
		if outputs, err = b.cfg.Provider.ReadOutput(ctx, batch); err != nil {
			return pending, fmt.Errorf("read the output of batch job %s: %w", batch.ARN, err)
		}
	}
	renewed := time.Now()
	pending = 0
	for i, id := range batch.JobIDs {
		if time.Since(renewed) > b.cfg.LeaseTTL/3 {
			if err := b.update(ctx, &batch); err != nil {
				return pending + len(batch.JobIDs) - i, err // the lease went to another process
			}
			renewed = time.Now()
		}
		var answer *pipeline.ModelResponse
		outcome := telemetry.BatchRecordUnanswered
		if out, ok := outputs[id]; ok && out.Err == nil {
			outcome = telemetry.BatchRecordAnswered
			resp := out.Response
			resp.Usage.CostUSD = b.cfg.Price.Cost(resp.Usage.InputTokens, resp.Usage.OutputTokens)
			resp.BatchJob, resp.Model, resp.Batch = batch.ARN, batch.Model, batchOf(batch, messages.BatchAnswered)
			answer = &resp
		} else if ok {
			outcome = telemetry.BatchRecordFailed
			b.cfg.Logger.Info().Str("job_id", id).Str("batch_id", batch.ID).AnErr("record_error", out.Err).Msg("batch record failed; running the job on demand")
		}
		done, err := f.FinishBatched(ctx, id, answer)
		if err != nil {
			b.cfg.Logger.Warn().Err(err).Str("job_id", id).Str("batch_id", batch.ID).Msg("job of an ended batch not settled; trying again at the next poll")
		}
		if !done {
			pending++
		} else {
			b.countSettled(batch.ID, id, outcome)
		}
	}
	if pending > 0 {
		return pending, nil
	}
	b.mu.Lock()
	delete(b.settled, batch.ID)
	b.mu.Unlock()
	batch.State = pipeline.BatchDone
	if err := b.update(ctx, &batch); err != nil {
		return 0, err
	}
	b.cfg.Logger.Info().Str("batch_id", batch.ID).Str("batch_job", batch.ARN).Str("status", batch.Status).Msg("batch done")
	return 0, nil
}

// countSettled counts job id of batch as settled with outcome, once.
func (b *Batches) countSettled(batch, id, outcome string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := b.settled[batch]
	if seen == nil {
		seen = map[string]bool{}
		b.settled[batch] = seen
	}
	if !seen[id] {
		seen[id] = true
		b.cfg.Metrics.BatchJobSettled(outcome)
	}
}

// batchOf is where a job of batch stands, in state.
func batchOf(batch pipeline.Batch, state string) *messages.BatchInference {
	return &messages.BatchInference{State: state, BatchID: batch.ID, JobARN: batch.ARN, Status: batch.Status}
}

// update writes batch with a renewed lease.
func (b *Batches) update(ctx context.Context, batch *pipeline.Batch) error {
	batch.LeaseUntil, batch.UpdatedAt = time.Now().Add(b.cfg.LeaseTTL), time.Now()
	if err := b.cfg.Store.UpdateBatch(ctx, *batch); err != nil {
		return fmt.Errorf("record batch %s %s: %w", batch.ID, batch.State, err)
	}
	return nil
}

// Model is the configured model the batches go to.
func (b *Batches) Model() string { return b.cfg.Model }

// Owner is the name this process holds leases under.
func (b *Batches) Owner() string { return b.cfg.Owner }
