package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
)

// TestGuardsChainBuiltInAndBedrock checks the wiring of guardrails.bedrock: the built-in
// policies run first (so anonymized values never reach Bedrock), then the Bedrock guardrail,
// whose interventions are counted like the built-in ones.
// Not parallel: it sets the AWS credentials environment.
func TestGuardsChainBuiltInAndBedrock(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.Path+" "+string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"action": "GUARDRAIL_INTERVENED", "outputs": [{"text": "Blocked by policy."}],
			"assessments": [{"topicPolicy": {"topics": [{"name": "secrets", "type": "DENY", "action": "BLOCKED", "detected": true}]}}]}`)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")

	cfg := config.Config{Guardrails: config.Guardrails{
		Input:   config.GuardrailPolicies{PII: &config.PIIPolicy{Entities: []string{"EMAIL"}}},
		Bedrock: &config.BedrockGuardrail{GuardrailID: "g1", GuardrailVersion: "2", Region: "eu-west-1", Endpoint: srv.URL},
	}}
	reg := prometheus.NewRegistry()
	in, out, err := (&app{}).guards(context.Background(), cfg, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if in == nil || out == nil {
		t.Fatalf("guards = %v, %v; want both sides guarded (Bedrock applies to both)", in, out)
	}
	res, err := in.Check(context.Background(), pipeline.GuardInput, []string{"mail ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Blocked || res.Reason != "Blocked by policy." || len(res.Assessments) != 2 {
		t.Errorf("outcome = %+v, want the built-in anonymization then the Bedrock block", res)
	}
	mu.Lock()
	got := strings.Join(bodies, "\n")
	mu.Unlock()
	if !strings.Contains(got, "/guardrail/g1/version/2/apply") || !strings.Contains(got, "{EMAIL}") || strings.Contains(got, "ann@example.com") {
		t.Errorf("Bedrock received %s; want the anonymized text only", got)
	}
	families, _ := reg.Gather()
	var counted bool
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "infleet_guardrail_interventions_total" && strings.Contains(m.String(), "denied_topic") {
				counted = m.GetCounter().GetValue() == 1
			}
		}
	}
	if !counted {
		t.Error("the Bedrock block is not counted in infleet_guardrail_interventions_total")
	}

	if _, _, err := (&app{}).guards(context.Background(), config.Config{Guardrails: config.Guardrails{
		Input: config.GuardrailPolicies{PII: &config.PIIPolicy{Entities: []string{"PASSPORT"}}}}}, prometheus.NewRegistry(), zerolog.Nop()); err == nil ||
		!strings.Contains(err.Error(), "guardrails.input") {
		t.Errorf("unknown entity: err = %v, want it named under guardrails.input", err)
	}
}
