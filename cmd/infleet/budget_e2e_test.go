package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
)

// TestTenantBudgetRefusesNewJobs spends a tenant's daily budget with one job and sees the next
// submission refused with 429 until the next UTC day, while another tenant goes on.
func TestTenantBudgetRefusesNewJobs(t *testing.T) {
	t.Parallel()
	h := startServe(t, `
models: [{name: fast, provider: sim, latency: 1ms, price: {input: 1000, output: 1000}}]
routes: {default: fast}
budgets: [{tenant: acme, daily_usd: 0.001}]
auth:
  api_keys:
    - {key: "k_budget_acme_01", tenant: acme}
    - {key: "k_budget_other_1", tenant: other}
log: {level: warn}
`)
	acme := map[string]string{"X-Api-Key": "k_budget_acme_01"}
	job := `{"task":"summarize","input":{"text":"spend some of the budget on this text"}}`
	code, _, data := h.do(http.MethodPost, "/v1/jobs", job, acme)
	if code != http.StatusAccepted {
		t.Fatalf("first job: %d %s", code, data)
	}
	var id string
	if i := strings.Index(string(data), `"job_id":"`); i >= 0 {
		id = strings.SplitN(string(data)[i+10:], `"`, 2)[0]
	}
	h.eventually(10_000_000_000, func() bool {
		_, _, d := h.do(http.MethodGet, "/v1/jobs/"+id, "", acme)
		return strings.Contains(string(d), `"status":"`+string(messages.StatusCompleted)+`"`)
	})
	code, hdr, data := h.do(http.MethodPost, "/v1/jobs", job, acme)
	if code != http.StatusTooManyRequests || !strings.Contains(string(data), "daily budget") {
		t.Fatalf("over budget: %d %s", code, data)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 || s > 86400 {
		t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
	}
	if code, _, data := h.do(http.MethodPost, "/v1/jobs", job, map[string]string{"X-Api-Key": "k_budget_other_1"}); code != http.StatusAccepted {
		t.Fatalf("another tenant: %d %s", code, data)
	}
}
