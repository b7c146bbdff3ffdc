package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestModelLimitsHoldForAFleetOfThreeWorkers runs one `infleet ingress` and three `infleet
// worker` processes on kfake and PostgreSQL against one `infleet fmsim`, with a model limited
// to 4 calls in flight and 900 requests a minute. Each worker alone would allow that much;
// together, through the job store, the model never sees more than 4 calls in flight nor more
// than its rate (a token bucket: at most one second's share beyond rpm/60 per second, so at
// most 1.7 % over any minute), while every job completes.
func TestModelLimitsHoldForAFleetOfThreeWorkers(t *testing.T) {
	base, brokersEnv := kafkaPostgresFleet(t)
	const maxConc, rpm, n = 4, 900, 150
	sim := startFmsim(t, "--latency", "150ms")
	f := newE2E(t, base+fmt.Sprintf(`transport: {kind: kafka, kafka: {session_timeout: 2s}}
models: [{name: m, provider: openai, base_url: %q, model_id: m, timeout: 10s, max_concurrency: %d, rpm: %d}]
routes: {default: m}
workers: {concurrency: 8, max_attempts: 5, shutdown_timeout: 1s}
`, sim+"/v1", maxConc, rpm), brokersEnv)
	ingress := f.start("ingress")
	for range 3 {
		f.start("worker")
	}
	resetFmsimStats(t, sim)
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, ingress.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"limited job %d"}}`, i)))
	}
	ingress.api.eventually(90*time.Second, func() bool {
		for _, id := range ids {
			if ingress.api.job(id).Status != messages.StatusCompleted {
				return false
			}
		}
		return true
	})
	st := fmsimStats(t, sim)
	first, last := -1, -1
	var calls int64
	for sec, c := range st.PerSecond {
		if c > 0 {
			if first < 0 {
				first = sec
			}
			last = sec
		}
		calls += c
	}
	span := last - first + 1
	allowed := float64(rpm) / 60 * float64(span+1) // the refill over the span and one second's burst
	t.Logf("fmsim saw %d calls over %d s (rpm %d allows %.0f), at most %d in flight (max_concurrency %d); per second %v",
		calls, span, rpm, allowed, st.MaxInFlight, maxConc, st.PerSecond[first:last+1])
	if st.MaxInFlight > maxConc {
		t.Errorf("the model saw %d calls in flight, want at most max_concurrency %d across the three workers", st.MaxInFlight, maxConc)
	}
	if float64(calls) > allowed {
		t.Errorf("the model saw %d calls in %d s, want at most %.0f (rpm %d across the three workers)", calls, span, allowed, rpm)
	}
	if calls < n {
		t.Errorf("the model saw %d calls for %d jobs", calls, n)
	}
	if rate := float64(calls) / float64(span); rate < 0.7*rpm/60 {
		t.Errorf("%.1f calls a second, want near rpm/60 = %d: the shared limits must not starve the fleet", rate, rpm/60)
	}
}

// resetFmsimStats zeroes fmsim's counters over HTTP.
func resetFmsimStats(t *testing.T, url string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, url+"/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
