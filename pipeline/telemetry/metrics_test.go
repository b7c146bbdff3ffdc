package telemetry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/internal/promtest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// record calls every recording method of m once.
func record(m *telemetry.Metrics) {
	m.JobAccepted("summarize", messages.PriorityHigh)
	m.JobFinished(messages.JobRecord{Status: messages.StatusCompleted, Task: "summarize", CreatedAt: time.Now()})
	m.JobRetried("summarize")
	m.DeadLettered(messages.ErrCodeModelError)
	m.InfrastructureFailed("store result")
	m.Redriven(2)
	m.Replayed(3)
	m.Expired(4, 5)
	m.StageDone("invoke", time.Now())
	m.ModelCalled("fast", time.Millisecond, messages.Usage{InputTokens: 1, OutputTokens: 2}, nil)
	m.ModelCalled("fast", time.Millisecond, messages.Usage{}, errors.New("throttled"))
	m.AddInFlight(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.WatchQueueDepth(ctx, nil, pipeline.Topics{}, time.Second)
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	t.Parallel()
	record(nil)
}

func TestMetricsRegistersEveryCollectorUnderInfleet(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	record(telemetry.NewMetrics(reg))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "infleet_") {
			t.Errorf("collector %s is not prefixed infleet_", f.GetName())
		}
		seen[f.GetName()] = true
	}
	for _, name := range []string{"infleet_jobs_accepted_total", "infleet_jobs_finished_total", "infleet_job_retries_total",
		"infleet_dead_letters_total", "infleet_infrastructure_failures_total", "infleet_redrives_total",
		"infleet_replayed_jobs_total", "infleet_jobs_expired_total", "infleet_results_expired_total",
		"infleet_stage_duration_seconds", "infleet_job_duration_seconds", "infleet_model_call_duration_seconds",
		"infleet_model_tokens_total", "infleet_jobs_in_flight"} {
		if !seen[name] {
			t.Errorf("no %s after recording", name)
		}
	}
}

// TestRecordingsLandInTheirSeries records jobs and calls twice each over two label sets and
// reads every per-job series back with its labels: the children the metrics keep must be
// the ones the vectors expose, with their labels in the vectors' order.
func TestRecordingsLandInTheirSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	for range 2 {
		m.JobAccepted("summarize", messages.PriorityHigh)
		m.JobAccepted("classify", messages.PriorityLow)
		m.JobFinished(messages.JobRecord{Status: messages.StatusCompleted, Task: "summarize", CreatedAt: time.Now()})
		m.JobFinished(messages.JobRecord{Status: messages.StatusFailed, Task: "classify", CreatedAt: time.Now()})
		m.StageDone("invoke", time.Now())
		m.StageDone("store", time.Now())
		m.ModelCalled("fast", time.Millisecond, messages.Usage{InputTokens: 1, OutputTokens: 2}, nil)
		m.ModelCalled("slow", time.Millisecond, messages.Usage{InputTokens: 5}, nil)
	}
	m.ModelCalled("fast", time.Millisecond, messages.Usage{}, errors.New("throttled"))
	counts := map[string]float64{}
	for key, v := range promtest.Series(t, reg) {
		for _, name := range []string{"infleet_jobs_accepted_total ", "infleet_jobs_finished_total ", "infleet_model_tokens_total ",
			"infleet_job_duration_seconds ", "infleet_stage_duration_seconds ", "infleet_model_call_duration_seconds "} {
			if strings.HasPrefix(key, name) {
				counts[key] = v
			}
		}
	}
	wantCounts := map[string]float64{
		"infleet_jobs_accepted_total priority=high task=summarize":     2,
		"infleet_jobs_accepted_total priority=low task=classify":       2,
		"infleet_jobs_finished_total status=COMPLETED task=summarize":  2,
		"infleet_jobs_finished_total status=FAILED task=classify":      2,
		"infleet_model_tokens_total direction=input model=fast":        2,
		"infleet_model_tokens_total direction=output model=fast":       4,
		"infleet_model_tokens_total direction=input model=slow":        10,
		"infleet_model_tokens_total direction=output model=slow":       0,
		"infleet_job_duration_seconds status=COMPLETED task=summarize": 2,
		"infleet_job_duration_seconds status=FAILED task=classify":     2,
		"infleet_stage_duration_seconds stage=invoke":                  2,
		"infleet_stage_duration_seconds stage=store":                   2,
		"infleet_model_call_duration_seconds model=fast outcome=ok":    2,
		"infleet_model_call_duration_seconds model=slow outcome=ok":    2,
		"infleet_model_call_duration_seconds model=fast outcome=error": 1,
	}
	promtest.Want(t, counts, wantCounts)
}
