package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
)

const metricsTenantConfig = e2eConfig + `
auth:
  api_keys: [{key: k_acme_metrics, tenant: acme-corp, tasks: ["*"]}]
`

// runTenantJob runs one job as tenant acme-corp and returns /metrics as an unauthenticated
// scraper sees it.
func runTenantJob(t *testing.T, h *apiHarness) []byte {
	t.Helper()
	key := map[string]string{"x-api-key": "k_acme_metrics"}
	code, _, data := h.do(http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"count my tokens"}}`, key)
	if code != http.StatusAccepted {
		t.Fatalf("submit: %d %s", code, data)
	}
	var acc struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(data, &acc); err != nil || acc.JobID == "" {
		t.Fatalf("submit answer %s: %v", data, err)
	}
	h.eventually(15*time.Second, func() bool {
		code, _, data := h.do(http.MethodGet, "/v1/jobs/"+acc.JobID, "", key)
		var rec messages.JobRecord
		return code == http.StatusOK && json.Unmarshal(data, &rec) == nil && rec.Status == messages.StatusCompleted
	})
	code, _, metrics := h.do(http.MethodGet, "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, metrics)
	}
	return metrics
}

func TestMetricsNameNoTenantByDefault(t *testing.T) {
	t.Parallel()
	metrics := runTenantJob(t, startServe(t, metricsTenantConfig))
	if bytes.Contains(metrics, []byte("acme-corp")) {
		t.Errorf("/metrics names the tenant:\n%s", grepLines(metrics, "acme-corp"))
	}
	if !bytes.Contains(metrics, []byte(`infleet_tenant_tokens_total{direction="input",model="fast",tenant="*"}`)) {
		t.Errorf("/metrics lacks the tokens summed over tenants:\n%s", grepLines(metrics, "infleet_tenant_"))
	}
}

func TestMetricsNameTenantsWhenAsked(t *testing.T) {
	t.Parallel()
	metrics := runTenantJob(t, startServe(t, metricsTenantConfig+"metrics: {tenant_labels: true}\n"))
	if !bytes.Contains(metrics, []byte(`infleet_tenant_tokens_total{direction="input",model="fast",tenant="acme-corp"}`)) {
		t.Errorf("/metrics lacks the tenant's tokens:\n%s", grepLines(metrics, "infleet_tenant_"))
	}
}

// TestMetricsAuthOnServe sets a process environment variable, so it does not run in parallel.
func TestMetricsAuthOnServe(t *testing.T) {
	t.Setenv("METRICS_SCRAPE_TOKEN_E2E", "scrape-me")
	h := startServe(t, e2eConfig+"metrics: {auth: {bearer_token_env: METRICS_SCRAPE_TOKEN_E2E}}\n")
	if code, hdr, data := h.do(http.MethodGet, "/metrics", "", nil); code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("/metrics without the token: %d %v %s, want 401 with a challenge", code, hdr, data)
	}
	code, _, data := h.do(http.MethodGet, "/metrics", "", map[string]string{"Authorization": "Bearer scrape-me"})
	if code != http.StatusOK || !bytes.Contains(data, []byte("infleet_model_circuit_state")) {
		t.Fatalf("/metrics with the token: %d %.200s", code, data)
	}
	if code, _, _ := h.do(http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("/readyz behind metrics auth: %d", code)
	}
}

func TestMetricsAuthNeedsItsVariables(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	env := map[string]string{"TOKEN": "t0ken", "PW": " "}
	getenv := func(name string) string { return env[name] }
	for _, tc := range []struct {
		auth config.MetricsAuth
		err  string
	}{
		{config.MetricsAuth{}, ""},
		{config.MetricsAuth{BearerTokenEnv: "TOKEN"}, ""},
		{config.MetricsAuth{BearerTokenEnv: "MISSING"}, "metrics.auth.bearer_token_env names MISSING, which is not set"},
		{config.MetricsAuth{Username: "prom", PasswordEnv: "PW"}, "metrics.auth.password_env names PW, which is not set"},
	} {
		h, err := metricsHandler(config.Metrics{Auth: tc.auth}, reg, prometheus.NewRegistry(), getenv, zerolog.Nop())
		switch {
		case tc.err == "" && (err != nil || h == nil):
			t.Errorf("%+v: %v", tc.auth, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%+v: error %v, want one containing %q", tc.auth, err, tc.err)
		}
	}
}

// grepLines returns the lines of data containing s.
func grepLines(data []byte, s string) string {
	var out []string
	for line := range strings.Lines(string(data)) {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestMetricsBoundTaskLabels runs jobs of four tasks on serve with metrics.max_task_labels 2:
// the first two keep their names in the per-task series and the others count under
// task="_other", so clients cannot grow /metrics by sending new task names.
func TestMetricsBoundTaskLabels(t *testing.T) {
	t.Parallel()
	h := startServe(t, e2eConfig+"metrics: {max_task_labels: 2}\n")
	for _, task := range []string{"alpha", "beta", "gamma", "delta"} {
		code, _, data := h.do(http.MethodPost, "/v1/jobs", `{"task":"`+task+`","input":{"text":"label me"}}`,
			map[string]string{"Prefer": "wait=10"})
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", task, code, data)
		}
	}
	code, _, metrics := h.do(http.MethodGet, "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, metrics)
	}
	for _, want := range []string{
		`infleet_jobs_accepted_total{priority="normal",task="alpha"} 1`,
		`infleet_jobs_accepted_total{priority="normal",task="beta"} 1`,
		`infleet_jobs_accepted_total{priority="normal",task="_other"} 2`,
		`infleet_jobs_finished_total{status="COMPLETED",task="_other"} 2`,
	} {
		if !bytes.Contains(metrics, []byte(want+"\n")) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "infleet_jobs_"))
		}
	}
	for _, task := range []string{"gamma", "delta"} {
		if bytes.Contains(metrics, []byte(`task="`+task+`"`)) {
			t.Errorf("/metrics names task %s past the limit:\n%s", task, grepLines(metrics, task))
		}
	}
}

// A scrape that names only infleet_ metrics gets them without the Go runtime's and the
// process's, which a full scrape still has.
func TestMetricsScrapeOfInfleetNamesSkipsRuntimeCollectors(t *testing.T) {
	t.Parallel()
	h := startServe(t, e2eConfig)
	code, _, full := h.do(http.MethodGet, "/metrics", "", nil)
	if code != http.StatusOK || !bytes.Contains(full, []byte("\nprocess_cpu_seconds_total ")) ||
		!bytes.Contains(full, []byte("\ngo_goroutines ")) || !bytes.Contains(full, []byte("\ninfleet_jobs_in_flight ")) {
		t.Fatalf("full scrape: %d\n%s", code, full)
	}
	code, _, some := h.do(http.MethodGet, "/metrics?name[]=infleet_jobs_in_flight&name[]=infleet_queue_depth", "", nil)
	if code != http.StatusOK || !bytes.Contains(some, []byte("\ninfleet_jobs_in_flight ")) ||
		!bytes.Contains(some, []byte("\ninfleet_queue_depth{")) {
		t.Fatalf("filtered scrape: %d\n%s", code, some)
	}
	for _, other := range []string{"process_", "go_", "infleet_http_"} {
		if bytes.Contains(some, []byte("\n"+other)) {
			t.Errorf("filtered scrape has %s metrics:\n%s", other, some)
		}
	}
	code, _, mixed := h.do(http.MethodGet, "/metrics?name[]=infleet_jobs_in_flight&name[]=process_cpu_seconds_total", "", nil)
	if code != http.StatusOK || !bytes.Contains(mixed, []byte("\nprocess_cpu_seconds_total ")) {
		t.Errorf("scrape naming a process metric: %d\n%s", code, mixed)
	}
}
