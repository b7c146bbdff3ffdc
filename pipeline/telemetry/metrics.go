// Package telemetry holds the pipeline's Prometheus metrics: one Metrics that intake, the
// worker, operations and the HTTP server record on, every name prefixed infleet_. The W3C
// trace context, which adapters send on when they call out, is in the pipeline root
// (ContextWithTraceparent, TraceparentFromContext, StartSpan); TraceHook puts its ids in logs.
package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Metrics holds the pipeline's Prometheus collectors, every name prefixed infleet_. A nil
// *Metrics records nothing: each method may be called on nil. Safe for concurrent use.
type Metrics struct {
	accepted      *prometheus.CounterVec
	finished      *prometheus.CounterVec
	retries       *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	infraFailures *prometheus.CounterVec
	redrives      prometheus.Counter
	replays       prometheus.Counter
	expiredJobs   prometheus.Counter
	expiredBlobs  prometheus.Counter
	stage         *prometheus.HistogramVec
	endToEnd      *prometheus.HistogramVec
	modelLatency  *prometheus.HistogramVec
	modelTokens   *prometheus.CounterVec
	inFlight      prometheus.Gauge
	queueDepth    *prometheus.GaugeVec
	// HTTPRequests and HTTPDurations are the API's requests by route and status code, and
	// their latency by route; the HTTP server's observer records them.
	HTTPRequests  *prometheus.CounterVec
	HTTPDurations *prometheus.HistogramVec

	// batch holds batch inference's collectors (batchinf.go).
	batch *batchMetrics

	// The children of the vectors recorded on for every job, by label values.
	acceptedBy *children[[2]string, prometheus.Counter]
	finishedBy *children[[2]string, finishedSeries]
	stageBy    *children[string, prometheus.Observer]
	stages     [len(stageNames)]atomic.Pointer[prometheus.Observer] // stageBy's series of stageNames, once looked up
	modelBy    *children[string, modelSeries]

	// tasks bounds the task label (tasks.go).
	tasks *taskLabels

	// emf, when set, receives finished jobs and model calls too (telemetry.emf).
	emf *EMF
}

// SendTo has m pass finished jobs and model calls to e as well; call it before m is shared.
func (m *Metrics) SendTo(e *EMF) {
	if m != nil {
		m.emf = e
	}
}

// NewMetrics creates the collectors and registers them with reg; it panics when reg holds
// collectors of the same names already (one Metrics per registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lat := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &Metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_jobs_accepted_total", Help: "Jobs accepted and queued, by task and priority.",
		}, []string{"task", "priority"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_jobs_finished_total", Help: "Jobs that reached a terminal status, by status and task.",
		}, []string{"status", "task"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_job_retries_total", Help: "Job attempts that failed and were queued again, by task.",
		}, []string{"task"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_dead_letters_total", Help: "Messages sent to the dead-letter place, by reason code.",
		}, []string{"reason"}),
		infraFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_infrastructure_failures_total",
			Help: "Deliveries retried without spending an attempt because a store or the queue failed (disk full, outage), by what failed.",
		}, []string{"op"}),
		redrives: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infleet_redrives_total", Help: "Dead letters sent back to their queue.",
		}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infleet_replayed_jobs_total", Help: "Archived jobs re-published by replays.",
		}),
		expiredJobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infleet_jobs_expired_total", Help: "Finished jobs deleted by retention (store.retention).",
		}),
		expiredBlobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infleet_results_expired_total", Help: "Result objects of expired jobs deleted by retention.",
		}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "infleet_stage_duration_seconds", Help: "Time spent in each pipeline stage.", Buckets: lat,
		}, []string{"stage"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "infleet_job_duration_seconds", Help: "Time from acceptance to terminal status, by task and status.", Buckets: lat,
		}, []string{"task", "status"}),
		modelLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "infleet_model_call_duration_seconds", Help: "Model call latency, by model and outcome (ok or error).", Buckets: lat,
		}, []string{"model", "outcome"}),
		modelTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_tokens_total", Help: "Tokens consumed, by model and direction (input or output).",
		}, []string{"model", "direction"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infleet_jobs_in_flight", Help: "Jobs being processed by this process.",
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infleet_queue_depth", Help: "Messages waiting in each priority's queue (where the transport can tell).",
		}, []string{"priority"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_http_requests_total", Help: "HTTP requests, by route and status code.",
		}, []string{"route", "code"}),
		HTTPDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "infleet_http_request_duration_seconds", Help: "HTTP request latency, by route.", Buckets: lat,
		}, []string{"route"}),
	}
	reg.MustRegister(m.accepted, m.finished, m.retries, m.deadLetters, m.infraFailures, m.redrives, m.replays,
		m.expiredJobs, m.expiredBlobs, m.stage, m.endToEnd, m.modelLatency, m.modelTokens, m.inFlight, m.queueDepth,
		m.HTTPRequests, m.HTTPDurations)
	m.batch = newBatchMetrics(reg)
	m.tasks = newTaskLabels(DefaultMaxTaskLabels, nil)
	m.acceptedBy = newChildren(func(k [2]string) prometheus.Counter { return m.accepted.WithLabelValues(k[0], k[1]) })
	m.finishedBy = newChildren(func(k [2]string) finishedSeries {
		return finishedSeries{m.finished.WithLabelValues(k[0], k[1]), m.endToEnd.WithLabelValues(k[1], k[0])}
	})
	m.stageBy = newChildren(func(stage string) prometheus.Observer { return m.stage.WithLabelValues(stage) })
	m.modelBy = newChildren(func(model string) modelSeries {
		return modelSeries{ok: m.modelLatency.WithLabelValues(model, "ok"),
			input: m.modelTokens.WithLabelValues(model, "input"), output: m.modelTokens.WithLabelValues(model, "output")}
	})
	return m
}

// finishedSeries are the series a finished job of one status and task counts in.
type finishedSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// modelSeries are the series of one model's calls that succeeded (failed calls, rare, go
// through the vector).
type modelSeries struct {
	ok            prometheus.Observer
	input, output prometheus.Counter
}

// JobAccepted counts a job accepted and queued (infleet_jobs_accepted_total); intake and a
// worker that writes the record of a job dropped straight on the queue call it once per job.
// The task label is bounded (LimitTaskLabels), as are JobFinished's and JobRetried's.
func (m *Metrics) JobAccepted(task string, p messages.Priority) {
	if m != nil {
		m.acceptedBy.get([2]string{m.tasks.label(task), string(p)}).Inc()
	}
}

// JobFinished counts a job that reached rec.Status, a terminal status, and observes its time
// since acceptance (infleet_jobs_finished_total, infleet_job_duration_seconds).
func (m *Metrics) JobFinished(rec messages.JobRecord) {
	if m == nil {
		return
	}
	rec.Task = m.tasks.label(rec.Task)
	series := m.finishedBy.get([2]string{string(rec.Status), rec.Task})
	series.count.Inc()
	if m.emf != nil {
		m.emf.JobFinished(rec)
	}
	if !rec.CreatedAt.IsZero() {
		series.duration.Observe(time.Since(rec.CreatedAt).Seconds())
	}
}

// JobRetried counts a failed attempt queued again (infleet_job_retries_total).
func (m *Metrics) JobRetried(task string) {
	if m != nil {
		m.retries.WithLabelValues(m.tasks.label(task)).Inc()
	}
}

// DeadLettered counts a message kept in the dead-letter place, by its error code
// (infleet_dead_letters_total).
func (m *Metrics) DeadLettered(reason string) {
	if m != nil {
		m.deadLetters.WithLabelValues(reason).Inc()
	}
}

// InfrastructureFailed counts a delivery retried without spending an attempt because op, a
// store or queue write, failed (infleet_infrastructure_failures_total).
func (m *Metrics) InfrastructureFailed(op string) {
	if m != nil {
		m.infraFailures.WithLabelValues(op).Inc()
	}
}

// Redriven counts n dead letters sent back to their queue (infleet_redrives_total).
func (m *Metrics) Redriven(n int) {
	if m != nil {
		m.redrives.Add(float64(n))
	}
}

// Replayed counts n archived jobs re-published by a replay (infleet_replayed_jobs_total).
func (m *Metrics) Replayed(n int) {
	if m != nil {
		m.replays.Add(float64(n))
	}
}

// Expired counts the jobs and result objects a retention sweep deleted
// (infleet_jobs_expired_total, infleet_results_expired_total).
func (m *Metrics) Expired(jobs, results int) {
	if m != nil {
		m.expiredJobs.Add(float64(jobs))
		m.expiredBlobs.Add(float64(results))
	}
}

// StageDone observes the time since start spent in a pipeline stage (decode, admit, wait for
// a place, guard_in, invoke, guard_out, store, record, notify) in
// infleet_stage_duration_seconds.
func (m *Metrics) StageDone(stage string, start time.Time) {
	if m == nil {
		return
	}
	d := time.Since(start).Seconds()
	i := knownStage(stage)
	if i < 0 {
		m.stageBy.get(stage).Observe(d)
		return
	}
	// The stages every job passes are looked up once, not under the shared lock each time.
	o := m.stages[i].Load()
	if o == nil {
		obs := m.stageBy.get(stage)
		o = &obs
		m.stages[i].Store(o)
	}
	(*o).Observe(d)
}

// stageNames are the pipeline's stages; knownStage numbers them.
var stageNames = [...]string{"decode", "admit", "wait", "guard_in", "invoke", "guard_out", "store", "record", "notify", "archive"}

// knownStage returns stage's place in stageNames, or -1.
func knownStage(stage string) int {
	for i, n := range stageNames {
		if n == stage {
			return i
		}
	}
	return -1
}

// ModelCalled observes a model call that took d, by model and outcome, and on success counts
// its tokens (infleet_model_call_duration_seconds, infleet_model_tokens_total).
func (m *Metrics) ModelCalled(model string, d time.Duration, u messages.Usage, err error) {
	if m == nil {
		return
	}
	if m.emf != nil {
		m.emf.ModelCalled(model, d, u, err)
	}
	if err != nil {
		m.modelLatency.WithLabelValues(model, "error").Observe(d.Seconds())
		return
	}
	series := m.modelBy.get(model)
	series.ok.Observe(d.Seconds())
	series.input.Add(float64(u.InputTokens))
	series.output.Add(float64(u.OutputTokens))
}

// AddInFlight moves the gauge of jobs being processed by this process by n
// (infleet_jobs_in_flight).
func (m *Metrics) AddInFlight(n float64) {
	if m != nil {
		m.inFlight.Add(n)
	}
}

// WatchQueueDepth samples each priority's queue depth from r every interval into
// infleet_queue_depth until ctx ends.
func (m *Metrics) WatchQueueDepth(ctx context.Context, r pipeline.DepthReporter, topics pipeline.Topics, every time.Duration) {
	if m == nil || r == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, p := range messages.Priorities {
			if n, err := r.QueueDepth(ctx, topics.For(p)); err == nil {
				m.queueDepth.WithLabelValues(string(p)).Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
