package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/messages"
)

// A tenant spends its budget on a serve process, which stops. An ingress-only process on the
// same store then refuses the tenant (429 with Retry-After until midnight UTC) and reports the
// usage the first process recorded, through the API and `infleet usage`. Not parallel: the CLI
// reads its key from INFLEET_API_KEY.
func TestUsageSurvivesRestartAndIngressRefusesOverBudget(t *testing.T) {
	dir := t.TempDir()
	yaml := `
models: [{name: fast, provider: sim, latency: 1ms, price: {input: 1000, output: 1000}}]
routes: {default: fast}
budgets: [{tenant: acme, daily_usd: 0.001}]
auth:
  api_keys:
    - {key: "k_usage_acme_0001", tenant: acme}
    - {key: "k_usage_other_001", tenant: other}
    - {key: "k_usage_operator1", tenant: ops, role: operator}
log: {level: warn}
`
	acme := map[string]string{"X-Api-Key": "k_usage_acme_0001"}
	operator := map[string]string{"X-Api-Key": "k_usage_operator1"}
	h, stop := startRoles(t, dir, yaml, roles{ingress: true, workers: true})
	job := `{"task":"summarize","input":{"text":"spend the whole budget on this text"}}`
	code, _, data := h.do(http.MethodPost, "/v1/jobs", job, acme)
	if code != http.StatusAccepted {
		t.Fatalf("first job: %d %s", code, data)
	}
	var rec messages.JobRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	h.eventually(10*time.Second, func() bool {
		_, _, d := h.do(http.MethodGet, "/v1/jobs/"+rec.JobID, "", acme)
		return strings.Contains(string(d), `"status":"`+string(messages.StatusCompleted)+`"`)
	})
	stop()

	ing, _ := startRoles(t, dir, yaml, roles{ingress: true})
	code, hdr, data := ing.do(http.MethodPost, "/v1/jobs", job, acme)
	if code != http.StatusTooManyRequests || !strings.Contains(string(data), "daily budget") {
		t.Fatalf("ingress-only, tenant over budget: %d %s; want 429", code, data)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 || s > 86400 {
		t.Fatalf("Retry-After %q, want the seconds to midnight UTC", hdr.Get("Retry-After"))
	}
	if code, _, data := ing.do(http.MethodPost, "/v1/jobs", job, map[string]string{"X-Api-Key": "k_usage_other_001"}); code != http.StatusAccepted {
		t.Fatalf("another tenant: %d %s", code, data)
	}

	code, _, data = ing.do(http.MethodGet, "/v1/usage?group_by=tenant,model,task", "", operator)
	var rep handlers.UsageReport
	if code != http.StatusOK || json.Unmarshal(data, &rep) != nil {
		t.Fatalf("GET /v1/usage: %d %s", code, data)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Tenant != "acme" || rep.Rows[0].Model != "fast" || rep.Rows[0].Task != "summarize" ||
		rep.Rows[0].Calls != 1 || rep.Rows[0].CostUSD <= 0.001 {
		t.Fatalf("usage after the restart = %+v, want acme's one call on fast", rep)
	}

	t.Setenv("INFLEET_API_KEY", "k_usage_acme_0001")
	var out, errOut bytes.Buffer
	if rc := run([]string{"usage", "--server", ing.base, "--group-by", "model"}, &out, &errOut); rc != 0 {
		t.Fatalf("infleet usage: exit %d: %s", rc, errOut.String())
	}
	if s := out.String(); !strings.Contains(s, "tenant acme") || !strings.Contains(s, "fast") || !strings.Contains(s, "TOTAL") {
		t.Fatalf("infleet usage table:\n%s", s)
	}
	out.Reset()
	if rc := run([]string{"usage", "--server", ing.base, "--json", "--tenant", "other"}, &out, &errOut); rc != exitUsage {
		t.Fatalf("another tenant's usage with acme's key: exit %d, want %d", rc, exitUsage)
	}
	if rc := run([]string{"usage", "--to", "05/12/2026"}, &out, &errOut); rc != exitUsage || !strings.Contains(errOut.String(), "YYYY-MM-DD") {
		t.Fatalf("bad --to: exit %d, %s", rc, errOut.String())
	}
}
