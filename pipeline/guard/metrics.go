package guard

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/pipeline"
)

// Metrics counts guardrail interventions. A nil *Metrics counts nothing; it is safe for
// concurrent use and meant to be shared by a process's input and output guards.
type Metrics struct {
	interventions *prometheus.CounterVec
}

// NewMetrics creates infleet_guardrail_interventions_total{policy,action,stage} and registers
// it with reg. Call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{interventions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "infleet_guardrail_interventions_total",
		Help: "Guardrail interventions (blocked or anonymized findings), by policy, action and stage.",
	}, []string{"policy", "action", "stage"})}
	if reg != nil {
		reg.MustRegister(m.interventions)
	}
	return m
}

func (m *Metrics) intervention(policy, action string, stage pipeline.GuardStage) {
	if m == nil {
		return
	}
	m.interventions.WithLabelValues(policy, action, string(stage)).Inc()
}
