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
// 5% 5xx and 1% hangs, with no job-level retries: every job must complete, answered by the
// model or its fallback, none degraded.
func TestServeSurvivesAFaultyModel(t *testing.T) {
	t.Parallel()
	faults := fmsim.Faults{ThrottleRate: 0.30, ErrorRate: 0.05, HangRate: 0.01, RetryAfter: 2 * time.Millisecond,
		Latency: fmsim.Latency{Dist: fmsim.DistLognormal, P50: time.Millisecond, P99: 5 * time.Millisecond}}
	sim := fmsim.New(fmsim.Config{Faults: faults, Seed: 3})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	h := startServe(t, fmt.Sprintf(`
models:
  - {name: primary, provider: openai, base_url: %[1]q, model_id: primary, timeout: 150ms, fallbacks: [backup]}
  - {name: backup, provider: openai, base_url: %[1]q, model_id: backup, timeout: 150ms}
routes: {default: primary}
resilience:
  max_attempts: 6
  backoff: {initial: 1ms, max: 20ms}
  retry_budget: {ratio: 1}
  degraded_message: "degraded"
workers: {concurrency: 32, max_attempts: 1, shutdown_timeout: 1s}
log: {level: error}
`, srv.URL+"/v1"))

	ids := make([]string, 500)
	for i := range ids {
		ids[i] = h.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"job %d of the chaos run"}}`, i))
	}
	for _, id := range ids {
		rec := h.waitStatus(id, messages.StatusCompleted)
		if rec.Model != "primary" && rec.Model != "backup" {
			t.Fatalf("job %s answered by %q", id, rec.Model)
		}
	}
	for _, id := range ids[:50] {
		code, _, body := h.do(http.MethodGet, messages.ResultPath(id), "", nil)
		if code != http.StatusOK || strings.Contains(string(body), `"degraded":true`) {
			t.Fatalf("result of %s: %d %s", id, code, body)
		}
	}
	st := sim.Stats()
	t.Logf("fmsim: %d calls for 500 jobs (%.2f per job), outcomes %v", st.Calls, float64(st.Calls)/500, st.ByOutcome)
}
