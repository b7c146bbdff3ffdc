package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/messages"
)

// TestBudgetHoldsForAFleetOfThreeWorkers runs one ingress and three workers (Kafka on kfake,
// PostgreSQL) against fmsim with a model budget: the model's spend, read from GET /v1/usage on
// the ingress, stops at the cap (exceeded by less than a call or two's cost in all, not per
// worker), the rest is downgraded, and every job's call is in the usage.
func TestBudgetHoldsForAFleetOfThreeWorkers(t *testing.T) {
	base, brokersEnv := kafkaPostgresFleet(t)
	const n, capUSD = 60, 0.02
	sim := startFmsim(t, "--latency", "50ms")
	// The PostgreSQL database is shared with other tests, whose models are named m too: usage
	// and budget counters are per model name, so this test's names are its own.
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	mName, cheapName := "m-"+sfx, "cheap-"+sfx
	f := newE2E(t, base+fmt.Sprintf(`transport: {kind: kafka, kafka: {session_timeout: 2s}}
models:
  - {name: %[1]s, provider: openai, base_url: %[2]q, model_id: m, timeout: 10s, price: {input: 100, output: 100}}
  - {name: %[3]s, provider: openai, base_url: %[2]q, model_id: cheap, timeout: 10s}
routes: {default: %[1]s}
budgets: [{model: %[1]s, daily_usd: %[4]v, downgrade_to: %[3]s}]
workers: {concurrency: 8, max_attempts: 5, shutdown_timeout: 1s}
`, mName, sim+"/v1", cheapName, capUSD), brokersEnv)
	ingress := f.start("ingress")
	for range 3 {
		f.start("worker")
	}
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, ingress.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"budgeted job %d"},"params":{"max_tokens":16}}`, i)))
	}
	ingress.api.eventually(90*time.Second, func() bool {
		for _, id := range ids {
			if ingress.api.job(id).Status != messages.StatusCompleted {
				return false
			}
		}
		return true
	})
	var byModel map[string]handlers.UsageTotal
	ingress.api.eventually(10*time.Second, func() bool {
		code, _, data := ingress.api.do(http.MethodGet, "/v1/usage?group_by=model", "", nil)
		var rep handlers.UsageReport
		if code != http.StatusOK || json.Unmarshal(data, &rep) != nil {
			return false
		}
		byModel = map[string]handlers.UsageTotal{}
		for _, r := range rep.Rows {
			byModel[r.Model] = r
		}
		return byModel[mName].Calls+byModel[cheapName].Calls >= n
	})
	m, cheap := byModel[mName], byModel[cheapName]
	if m.Calls == 0 || cheap.Calls == 0 {
		t.Fatalf("usage by model %+v: want calls on m up to its budget, then on cheap", byModel)
	}
	perCall := m.CostUSD / float64(m.Calls)
	t.Logf("m: %d calls, $%.5f (cap $%.2f, $%.5f a call); cheap: %d calls", m.Calls, m.CostUSD, capUSD, perCall, cheap.Calls)
	if m.CostUSD > capUSD+2*perCall || m.CostUSD < capUSD-2*perCall {
		t.Errorf("m spent $%.5f across three workers, want the $%.2f cap within a call or two ($%.5f each), not one per worker", m.CostUSD, capUSD, perCall)
	}
}
