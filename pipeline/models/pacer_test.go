package models_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// TestPacingSettlesNearAProvidersRateQuota: a model that throttles the way providers do, past
// a request quota (50 per sliding second here, a minute's quota at 60 times the speed), is
// called by 16 callers without pause. The fleet settles near the quota's rate, with at most
// 1.1 model calls per answer once settled, and no call moves to the fallback.
func TestPacingSettlesNearAProvidersRateQuota(t *testing.T) {
	t.Parallel()
	const quota = 50
	const settle, run = 3 * time.Second, 8 * time.Second
	b := setup(t, map[string]fmsim.Faults{"q": {RPM: quota, RPMWindow: time.Second, Latency: fmsim.Latency{P50: 5 * time.Millisecond}}},
		models.Policy{Deadline: 2 * time.Second},
		models.ModelSpec{Name: "q", Fallbacks: []string{"backup"}}, models.ModelSpec{Name: "backup"})
	start := time.Now()
	var mu sync.Mutex
	answers, settledAnswers, requeued := 0, 0, 0
	var settledCalls int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := 0; time.Since(start) < run; i++ {
				resp, err := b.fleet.Client("q").Invoke(t.Context(), request("paced "+itoa(i)))
				var me *pipeline.ModelError
				if errors.As(err, &me) && me.Kind == pipeline.ModelThrottled {
					mu.Lock()
					requeued++
					mu.Unlock()
					time.Sleep(min(me.RetryAfter, time.Until(start.Add(run))))
					continue
				}
				if err != nil || resp.Model != "" {
					t.Errorf("call: resp %+v, err %v: want q itself to answer", resp.Model, err)
					return
				}
				mu.Lock()
				answers++
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
	settledCalls = b.total("q") - settledFrom
	rate := float64(settledAnswers) / (run - settle).Seconds()
	perAnswer := float64(settledCalls) / float64(settledAnswers)
	t.Logf("quota %d/s: settled at %.1f answers/s with %.3f model calls per answer (whole run: %d answers, %d calls, %d handed back); fmsim %v",
		quota, rate, perAnswer, answers, b.total("q"), requeued, b.calls("q"))
	if rate < 0.85*quota || rate > 1.12*quota {
		t.Errorf("settled at %.1f answers/s, want near the quota of %d/s", rate, quota)
	}
	if perAnswer > 1.1 {
		t.Errorf("%.3f model calls per answer once settled, want at most 1.1", perAnswer)
	}
	if b.total("backup") != 0 {
		t.Errorf("backup called %d times: throttling must be waited out, not fallen back from", b.total("backup"))
	}
}
