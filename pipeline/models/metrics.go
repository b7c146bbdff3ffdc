package models

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/pipeline/batch"
)

// AllTenants is the tenant label value of the per-tenant series when tenant labels are off
// (FleetConfig.TenantLabels false): one series per model summing every tenant's figures.
const AllTenants = "*"

// fleetMetrics are the collectors of the model layer, every name prefixed infleet_model_ or
// infleet_routing_. Safe for concurrent use.
type fleetMetrics struct {
	circuit         *prometheus.GaugeVec
	pace            *prometheus.GaugeVec
	attempts        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	budgetExhausted *prometheus.CounterVec
	fallbacks       *prometheus.CounterVec
	degraded        *prometheus.CounterVec
	cache           *prometheus.CounterVec
	cost            *prometheus.CounterVec
	routes          *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	tenantCost      *prometheus.CounterVec
	tenantTokens    *prometheus.CounterVec
	// tenantLabels keeps tenant names in the tenant label; false records AllTenants.
	tenantLabels bool
	// reg is where the collectors went, for those added later (batching's); nil for none.
	reg prometheus.Registerer
}

// tenant returns the tenant label value of a job of tenant t.
func (m *fleetMetrics) tenant(t string) string {
	if m.tenantLabels {
		return t
	}
	return AllTenants
}

func newFleetMetrics(reg prometheus.Registerer, tenantLabels bool) *fleetMetrics {
	by := `by tenant and model (jobs with a tenant only; tenant="*" sums every tenant unless metrics.tenant_labels is on)`
	m := &fleetMetrics{
		reg:          reg,
		tenantLabels: tenantLabels,
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infleet_model_circuit_state", Help: "Circuit breaker state per model: 0 closed, 1 half-open, 2 open.",
		}, []string{"model"}),
		pace: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "infleet_model_pace", Help: "Calls per second this process is paced to per model after throttling (the fleet's rate when the pace is shared); 0 when unpaced.",
		}, []string{"model"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_attempts_total", Help: "Model call attempts, by model and outcome (ok, an error kind, circuit_open, limited).",
		}, []string{"model", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_retries_total", Help: "Model call retries, by model and the error kind retried.",
		}, []string{"model", "kind"}),
		budgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_retry_budget_exhausted_total", Help: "Retries refused because the model's retry budget was spent.",
		}, []string{"model"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_fallbacks_total", Help: "Calls moved from a model to its fallback.",
		}, []string{"from", "to"}),
		degraded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_degraded_total", Help: "Calls answered with the degradation message, by the model called.",
		}, []string{"model"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_cache_total", Help: "Response cache lookups, by result (hit or miss).",
		}, []string{"result"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_model_cost_usd_total", Help: "Estimated model spend in US dollars, by model (price table in config).",
		}, []string{"model"}),
		routes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_routing_decisions_total", Help: "Routing decisions, by the rule kind that decided and the model chosen.",
		}, []string{"rule", "model"}),
		tenantCost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_tenant_cost_usd_total", Help: "Estimated model spend in US dollars, " + by + ".",
		}, []string{"tenant", "model"}),
		tenantTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_tenant_tokens_total", Help: "Tokens consumed, by direction and " + by + ".",
		}, []string{"tenant", "model", "direction"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infleet_config_reloads_total", Help: "Reloads of models, routing, prompts and budgets, by result (ok or rejected).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.circuit, m.pace, m.attempts, m.retries, m.budgetExhausted, m.fallbacks, m.degraded, m.cache, m.cost, m.routes, m.reloads, m.tenantCost, m.tenantTokens)
	}
	return m
}

// registerBatching adds request batching's counters, read from b's Stats. A second picker on
// the same fleet keeps the first one's.
func (m *fleetMetrics) registerBatching(b *batch.Batcher) {
	if m.reg == nil {
		return
	}
	for _, c := range []struct {
		name, help string
		value      func(batch.Stats) int64
	}{
		{"infleet_batch_items_total", "Model requests of batched tasks (batching[]).", func(s batch.Stats) int64 { return s.Items }},
		{"infleet_batch_calls_total", "Model calls made for batched tasks: one per group sent, plus one per item sent again alone.", func(s batch.Stats) int64 { return s.Calls }},
		{"infleet_batch_groups_total", "Groups of two or more items sent as one model call.", func(s batch.Stats) int64 { return s.Batches }},
		{"infleet_batch_items_alone_total", "Items sent again alone: their answer in the batch was missing or malformed, or the batch was refused.", func(s batch.Stats) int64 { return s.Alone }},
	} {
		_ = m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.value(b.Stats())) }))
	}
}
