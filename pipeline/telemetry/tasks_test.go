package telemetry_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/internal/promtest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// TestTaskLabelsAreBounded records jobs of 1,000 tasks from 8 goroutines on a process that
// names 2 besides the configured one: the per-task series hold the configured task, 2 others
// and "_other", whatever clients send, and no job goes uncounted.
func TestTaskLabelsAreBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	m.LimitTaskLabels(2, []string{"summarize"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 125 {
				task := fmt.Sprintf("task-%d-%d", g, i)
				m.JobAccepted(task, messages.PriorityNormal)
				m.JobFinished(messages.JobRecord{Status: messages.StatusCompleted, Task: task, CreatedAt: time.Now()})
				m.JobRetried(task)
			}
		})
	}
	wg.Wait()
	for range 3 {
		m.JobAccepted("summarize", messages.PriorityNormal)
		m.JobFinished(messages.JobRecord{Status: messages.StatusFailed, Task: "summarize", CreatedAt: time.Now()})
	}
	tasks := map[string]map[string]bool{}
	totals := map[string]float64{}
	for key, v := range promtest.Series(t, reg) {
		for _, name := range []string{"infleet_jobs_accepted_total", "infleet_jobs_finished_total", "infleet_job_duration_seconds", "infleet_job_retries_total"} {
			if !strings.HasPrefix(key, name+" ") {
				continue
			}
			_, task, _ := strings.Cut(key, "task=")
			task, _, _ = strings.Cut(task, " ")
			if tasks[name] == nil {
				tasks[name] = map[string]bool{}
			}
			tasks[name][task] = true
			totals[name] += v
		}
	}
	for _, name := range []string{"infleet_jobs_accepted_total", "infleet_jobs_finished_total", "infleet_job_duration_seconds", "infleet_job_retries_total"} {
		got := tasks[name]
		want := 3 // 2 tasks and _other
		if name != "infleet_job_retries_total" {
			want++ // and summarize
		}
		if len(got) != want || !got[telemetry.OtherTasks] {
			t.Errorf("%s is labelled with %d tasks %v; want %d with %q", name, len(got), got, want, telemetry.OtherTasks)
		}
		wantTotal := 1000.0
		if name != "infleet_job_retries_total" {
			wantTotal += 3
		}
		if totals[name] != wantTotal {
			t.Errorf("%s counts %v jobs; want %v", name, totals[name], wantTotal)
		}
	}
	promtest.Want(t, pick(promtest.Series(t, reg), "task=summarize"), map[string]float64{
		"infleet_jobs_accepted_total priority=normal task=summarize": 3,
		"infleet_jobs_finished_total status=FAILED task=summarize":   3,
		"infleet_job_duration_seconds status=FAILED task=summarize":  3,
	})
}

// pick returns the series of got whose key holds label.
func pick(got map[string]float64, label string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range got {
		if strings.Contains(k, label) {
			out[k] = v
		}
	}
	return out
}
