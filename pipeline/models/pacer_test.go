package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// quotaRun is what runQuota measured.
type quotaRun struct {
	quota              int
	rate, perAnswer    float64 // once settled
	answers, requeued  int
	calls, backupCalls int64
	outcomes           map[string]int64
}

// runQuota calls a model that throttles the way providers do, past a request quota (50 per
// sliding second, a minute's quota at 60 times the speed), from 16 callers without pause for
// 8 s, and measures the last 5 s. A retryable failure (throttled, or a call cut off by its
// deadline on a loaded machine) is handed back and retried after its Retry-After, as the
// worker hands a job back to the queue.
func runQuota(tb testing.TB) quotaRun { return runQuotaOn(tb, 1) }

// runQuotaOn is runQuota with the 16 callers spread over processes Fleets, each pacing the
// model on its own, as the worker processes of a fleet do.
func runQuotaOn(tb testing.TB, processes int) quotaRun {
	const quota = 50
	const settle, run = 3 * time.Second, 8 * time.Second
	policy := models.Policy{Deadline: 2 * time.Second}
	b := setup(tb, map[string]fmsim.Faults{"q": {RPM: quota, RPMWindow: time.Second, Latency: fmsim.Latency{P50: 5 * time.Millisecond}}},
		policy, models.ModelSpec{Name: "q", Fallbacks: []string{"backup"}}, models.ModelSpec{Name: "backup"})
	fleets := []*models.Fleet{b.fleet}
	for range processes - 1 {
		f, err := models.NewFleet(models.FleetConfig{Policy: policy, Models: []models.ModelSpec{
			{Name: "q", ModelID: "q", Client: b.client(tb, "q"), Timeout: 2 * time.Second, Fallbacks: []string{"backup"}},
			{Name: "backup", ModelID: "backup", Client: b.client(tb, "backup"), Timeout: 2 * time.Second},
		}})
		if err != nil {
			tb.Fatal(err)
		}
		fleets = append(fleets, f)
	}
	start := time.Now()
	var mu sync.Mutex
	r := quotaRun{quota: quota}
	settledAnswers := 0
	var wg sync.WaitGroup
	for c := range 16 {
		fleet := fleets[c%len(fleets)]
		wg.Go(func() {
			for i := 0; time.Since(start) < run; i++ {
				resp, err := fleet.Client("q").Invoke(context.Background(), request("paced "+itoa(i)))
				var me *pipeline.ModelError
				if errors.As(err, &me) && me.Kind.Retryable() {
					mu.Lock()
					r.requeued++
					mu.Unlock()
					time.Sleep(min(max(me.RetryAfter, 10*time.Millisecond), time.Until(start.Add(run))))
					continue
				}
				if err != nil || resp.Model != "" {
					tb.Errorf("call: resp %+v, err %v: want q itself to answer", resp.Model, err)
					return
				}
				mu.Lock()
				r.answers++
				if time.Since(start) >= settle {
					settledAnswers++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(settle)
	settledFrom := b.total("q")
	wg.Wait()
	r.rate = float64(settledAnswers) / (run - settle).Seconds()
	r.perAnswer = float64(b.total("q")-settledFrom) / float64(settledAnswers)
	r.calls, r.backupCalls, r.outcomes = b.total("q"), b.total("backup"), b.calls("q")
	return r
}

// TestPacingSettlesNearAProvidersRateQuota: against a request quota, the fleet settles near
// the quota's rate, with at most 1.1 model calls per answer once settled, and no call moves to
// the fallback. Like the other load tests here it is not parallel: it runs alone, before the
// parallel tests, so that neither disturbs the other's timing.
func TestPacingSettlesNearAProvidersRateQuota(t *testing.T) {
	r := runQuota(t)
	t.Logf("quota %d/s: settled at %.1f answers/s with %.3f model calls per answer (whole run: %d answers, %d calls, %d handed back); fmsim %v",
		r.quota, r.rate, r.perAnswer, r.answers, r.calls, r.requeued, r.outcomes)
	if r.rate < 0.85*float64(r.quota) || r.rate > 1.12*float64(r.quota) {
		t.Errorf("settled at %.1f answers/s, want near the quota of %d/s", r.rate, r.quota)
	}
	if r.perAnswer > 1.1 {
		t.Errorf("%.3f model calls per answer once settled, want at most 1.1", r.perAnswer)
	}
	if r.backupCalls != 0 {
		t.Errorf("backup called %d times: throttling must be waited out, not fallen back from", r.backupCalls)
	}
}

// BenchmarkPacingAgainstARateQuota reports runQuota's figures (one 8 s run, whatever b.N).
func BenchmarkPacingAgainstARateQuota(b *testing.B) {
	r := runQuota(b)
	b.ReportMetric(r.rate/float64(r.quota)*100, "%-of-quota")
	b.ReportMetric(r.perAnswer, "calls/answer")
	b.ReportMetric(float64(r.backupCalls), "fallback-calls")
}

// BenchmarkPacingOfThreeProcesses reports runQuotaOn's figures for three Fleets, standing for
// three worker processes that each pace the model on their own, sharing one request quota
// between 16 callers (one 8 s run, whatever b.N): the baseline a pace shared through the
// store is to improve on.
func BenchmarkPacingOfThreeProcesses(b *testing.B) {
	r := runQuotaOn(b, 3)
	b.ReportMetric(r.rate/float64(r.quota)*100, "%-of-quota")
	b.ReportMetric(r.perAnswer, "calls/answer")
	b.ReportMetric(float64(r.backupCalls), "fallback-calls")
}
