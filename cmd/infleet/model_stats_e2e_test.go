package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/models"
)

// TestModelFiguresOfTheFleetOnTheIngress runs one `infleet ingress` and two `infleet worker`
// processes on kfake and one SQLite file against one `infleet fmsim`. The ingress calls no
// model, yet its GET /v1/models (and the console's Models page) counts every call both workers
// made, each worker's apart, and shows the model's circuit open once fmsim fails every call.
func TestModelFiguresOfTheFleetOnTheIngress(t *testing.T) {
	runsTheBinary(t)
	brokers := fleetKafka(t)
	sim := startFmsim(t, "--latency", "20ms")
	dataDir := t.TempDir()
	base := fmt.Sprintf("store: {kind: sqlite, sqlite: {path: %q}}\nlog: {level: warn}\n", filepath.Join(dataDir, "fleet.db"))
	kafkaInit(t, base+fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\n", brokers))
	f := newE2E(t, base+fmt.Sprintf(`transport: {kind: kafka, kafka: {session_timeout: 2s}}
models: [{name: m, provider: openai, base_url: %q, model_id: m, timeout: 5s, rpm: 6000}]
routes: {default: m}
resilience: {breaker: {failures: 3, open_for: 1m}}
workers: {concurrency: 4, max_attempts: 2, shutdown_timeout: 1s}
`, sim+"/v1"), "INFLEET_TRANSPORT_KAFKA_BROKERS="+brokers)
	f.dataDir = dataDir // shared: the SQLite file of every process
	ingress := f.start("ingress")
	for range 2 {
		f.start("worker")
	}
	resetFmsimStats(t, sim)

	const n = 60
	ids := make([]string, 0, n)
	for i := range n {
		ids = append(ids, ingress.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"counted job %d"}}`, i)))
	}
	ingress.api.eventually(60*time.Second, func() bool {
		for _, id := range ids {
			if ingress.api.job(id).Status != messages.StatusCompleted {
				return false
			}
		}
		return true
	})
	calls := fmsimStats(t, sim).Calls
	var rep models.Report
	var list modelList
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			list = getModels(t, ingress.api)
			if len(list.Models) == 1 {
				rep = list.Models[0]
				if cond() {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("the ingress's GET /v1/models never showed %s: %+v", what, list)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor(fmt.Sprintf("the %d calls fmsim saw from two workers", calls), func() bool {
		return int64(rep.Calls) == calls && len(rep.Processes) == 2
	})
	t.Logf("fmsim saw %d calls; the ingress shows %d: processes %+v, p50 %.0f ms, p95 %.0f ms, %d calls/min",
		calls, rep.Calls, rep.Processes, rep.P50Ms, rep.P95Ms, rep.CallsPerMinute)
	if !list.Live || list.Scope != models.ScopeFleet || rep.Circuit != "closed" || rep.Circuits.Closed != 2 {
		t.Errorf("want live fleet figures with the circuit closed on both workers: %+v", list)
	}
	for _, p := range rep.Processes {
		if p.Calls == 0 {
			t.Errorf("worker %s made no call of %d jobs: the test shows nothing of the merge", p.Process, n)
		}
	}
	if rep.P50Ms < 10 || rep.P95Ms < rep.P50Ms || rep.ErrorRate != 0 || rep.CallsPerMinute < calls/2 || rep.Limits.RPM != 6000 {
		t.Errorf("want p50 near fmsim's 20ms, no errors, the calls within the minute and rpm 6000: %+v", rep)
	}

	// fmsim fails every call: the workers' breakers open, and the ingress shows it.
	req, _ := http.NewRequest(http.MethodPost, sim+"/admin/faults", strings.NewReader(`{"error_rate": 1}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i := range 30 {
		ingress.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"failing job %d"}}`, i))
	}
	waitFor("an open circuit", func() bool { return rep.Circuit == "open" && rep.Circuits.Open >= 1 })
	t.Logf("after fmsim failed: circuit %s, %+v, error rate %.2f", rep.Circuit, *rep.Circuits, rep.ErrorRate)
	if rep.ErrorRate == 0 || rep.Circuits.Processes != 2 {
		t.Errorf("want errors counted and both workers live: %+v", rep)
	}
	code, _, page := ingress.api.do(http.MethodGet, "/ui/models", "", nil)
	if code != http.StatusOK || !strings.Contains(string(page), `c-open">open</span>`) || !strings.Contains(string(page), "open on ") {
		t.Errorf("the ingress's Models page: %d, want the open circuit:\n%s", code, page)
	}
}

// modelList is the body of GET /v1/models.
type modelList struct {
	Live   bool            `json:"live"`
	Scope  string          `json:"scope"`
	Models []models.Report `json:"models"`
}

func getModels(t *testing.T, h *apiHarness) modelList {
	t.Helper()
	code, _, data := h.do(http.MethodGet, "/v1/models", "", nil)
	var out modelList
	if code != http.StatusOK {
		t.Fatalf("GET /v1/models: %d %s", code, data)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("GET /v1/models: %v: %s", err, data)
	}
	return out
}
