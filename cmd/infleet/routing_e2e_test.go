package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/messages"
)

// TestServeSurvivesAFaultyModel runs 500 jobs through serve against fmsim at 30% throttling,
// 5% 5xx and 1% hangs, with the shipped retry policy and a fallback: every job completes, none
// degraded, and at least 95% are answered by the primary (throttling is waited out on it; a
// job still throttled waits in the queue for it).
func TestServeSurvivesAFaultyModel(t *testing.T) {
	t.Parallel()
	faults := fmsim.Faults{ThrottleRate: 0.30, ErrorRate: 0.05, HangRate: 0.01, RetryAfter: 2 * time.Millisecond,
		Latency: fmsim.Latency{Dist: fmsim.DistLognormal, P50: time.Millisecond, P99: 5 * time.Millisecond}}
	sim := fmsim.New(fmsim.Config{Faults: faults, Seed: 3})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	h := startServe(t, fmt.Sprintf(`
models:
  - {name: primary, provider: openai, base_url: %[1]q, model_id: primary, timeout: 1s, fallbacks: [backup]}
  - {name: backup, provider: openai, base_url: %[1]q, model_id: backup, timeout: 1s}
routes: {default: primary}
resilience:
  backoff: {initial: 1ms, max: 20ms}
  breaker: {failures: 10}
  degraded_message: "degraded"
workers: {concurrency: 32, max_attempts: 5, retry_backoff: {initial: 10ms, max: 100ms}, shutdown_timeout: 1s}
log: {level: error}
`, srv.URL+"/v1"))

	ids := make([]string, 500)
	for i := range ids {
		ids[i] = h.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"job %d of the chaos run"}}`, i))
	}
	primary := 0
	for _, id := range ids {
		rec := h.waitStatus(id, messages.StatusCompleted)
		if rec.Model != "primary" && rec.Model != "backup" {
			t.Fatalf("job %s answered by %q", id, rec.Model)
		}
		if rec.Model == "primary" {
			primary++
		}
	}
	if primary < 475 {
		t.Errorf("%d of 500 jobs answered by the primary, want at least 95%% (475)", primary)
	}
	for _, id := range ids[:50] {
		code, _, body := h.do(http.MethodGet, messages.ResultPath(id), "", nil)
		if code != http.StatusOK || strings.Contains(string(body), `"degraded":true`) {
			t.Fatalf("result of %s: %d %s", id, code, body)
		}
	}
	st := sim.Stats()
	t.Logf("primary answered %d of 500; fmsim: %d calls for 500 jobs (%.2f per job), outcomes %v", primary, st.Calls, float64(st.Calls)/500, st.ByModelOutcome)
}
