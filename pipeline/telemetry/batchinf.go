package telemetry

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of a job of an ended batch inference batch, as BatchJobSettled counts them.
const (
	// BatchRecordAnswered: the job's output record answered it.
	BatchRecordAnswered = "answered"
	// BatchRecordFailed: the job's record came back with an error; the job ran on demand.
	BatchRecordFailed = "record_failed"
	// BatchRecordUnanswered: the provider job ended without answering the record (it failed,
	// expired or was stopped, or left the record out); the job ran on demand.
	BatchRecordUnanswered = "unanswered"
)

// batchMetrics are batch inference's collectors (pipeline/batchinf).
type batchMetrics struct {
	recorded    prometheus.Counter
	jobsIn      prometheus.Counter
	submitted   prometheus.Counter
	ended       *prometheus.CounterVec
	jobsOut     *prometheus.CounterVec
	followed    prometheus.Gauge
	jobsWaiting prometheus.Gauge
}

func newBatchMetrics(reg prometheus.Registerer) *batchMetrics {
	b := &batchMetrics{
		recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infleet_batch_inference_batches_recorded_total", Help: "Batch inference batches recorded with their jobs and input (batch_inference).",
		}),
		jobsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infleet_batch_inference_jobs_batched_total", Help: "Jobs handed to recorded batch inference batches.",
		}),
		submitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infleet_batch_inference_batches_submitted_total", Help: "Provider batch jobs created (Bedrock CreateModelInvocationJob).",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_batch_inference_batches_ended_total",
			Help: "Provider batch jobs that ended, by the provider's final status (Completed, PartiallyCompleted, Failed, Stopped, Expired).",
		}, []string{"status"}),
		jobsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_batch_inference_jobs_settled_total",
			Help: "Jobs of ended batch inference batches that ended, by outcome (answered, record_failed, unanswered).",
		}, []string{"outcome"}),
		followed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infleet_batch_inference_batches_followed", Help: "Batch inference batches not done that this process followed at its last poll.",
		}),
		jobsWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "infleet_batch_inference_jobs_waiting", Help: "Jobs of the batch inference batches this process followed at its last poll, not yet settled.",
		}),
	}
	reg.MustRegister(b.recorded, b.jobsIn, b.submitted, b.ended, b.jobsOut, b.followed, b.jobsWaiting)
	return b
}

// BatchRecorded counts a batch inference batch of jobs recorded
// (infleet_batch_inference_batches_recorded_total, infleet_batch_inference_jobs_batched_total).
func (m *Metrics) BatchRecorded(jobs int) {
	if m != nil {
		m.batch.recorded.Inc()
		m.batch.jobsIn.Add(float64(jobs))
	}
}

// BatchSubmitted counts a provider batch job created
// (infleet_batch_inference_batches_submitted_total).
func (m *Metrics) BatchSubmitted() {
	if m != nil {
		m.batch.submitted.Inc()
	}
}

// BatchEnded counts a provider batch job that ended with status
// (infleet_batch_inference_batches_ended_total).
func (m *Metrics) BatchEnded(status string) {
	if m != nil {
		m.batch.ended.WithLabelValues(status).Inc()
	}
}

// BatchJobSettled counts a job of an ended batch that ended, by outcome (BatchRecordAnswered,
// BatchRecordFailed, BatchRecordUnanswered) (infleet_batch_inference_jobs_settled_total).
func (m *Metrics) BatchJobSettled(outcome string) {
	if m != nil {
		m.batch.jobsOut.WithLabelValues(outcome).Inc()
	}
}

// BatchesFollowed sets how many batches this process follows and how many of their jobs wait
// (infleet_batch_inference_batches_followed, infleet_batch_inference_jobs_waiting). Summed
// over the fleet's processes they are the fleet's: one process follows a batch at a time.
func (m *Metrics) BatchesFollowed(batches, jobs int) {
	if m != nil {
		m.batch.followed.Set(float64(batches))
		m.batch.jobsWaiting.Set(float64(jobs))
	}
}
