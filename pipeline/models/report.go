package models

import "time"

// Scopes of a Report's figures.
const (
	// ScopeFleet figures are every process's (FleetReports).
	ScopeFleet = "fleet"
	// ScopeProcess figures are the reporting process's own calls (Picker.Reports).
	ScopeProcess = "process"
)

// Report is one configured model as an operator sees it: its configuration and live figures
// of it, of the whole fleet or of this process (Scope).
type Report struct {
	Name      string   `json:"name"`
	ModelID   string   `json:"model_id,omitempty"`
	Fallbacks []string `json:"fallbacks,omitempty"`
	// Scope says whose figures these are: ScopeFleet or ScopeProcess; empty for a
	// configuration without figures.
	Scope string `json:"scope,omitempty"`
	// Circuit is the breaker's state: closed, half_open or open. For the fleet, the worst
	// state among the live processes (Circuits counts them).
	Circuit string `json:"circuit"`
	// Circuits counts the live processes by circuit state (fleet figures only).
	Circuits *CircuitSummary `json:"circuits,omitempty"`
	// Processes are the live processes calling the model (fleet figures only).
	Processes []ProcessReport `json:"processes,omitempty"`
	// Calls is how many attempts P50Ms, P95Ms, ErrorRate and ThrottleRate cover: the recent
	// ones (at most 256) of a process, or the fleet's in FleetWindow.
	Calls        int     `json:"calls"`
	P50Ms        float64 `json:"p50_ms"`
	P95Ms        float64 `json:"p95_ms"`
	ErrorRate    float64 `json:"error_rate"`
	ThrottleRate float64 `json:"throttle_rate"`
	// CallsPerMinute and TokensPerMinute are the last 60 seconds' attempts and tokens, to
	// compare with Limits.
	CallsPerMinute  int64  `json:"calls_per_minute"`
	TokensPerMinute int64  `json:"tokens_per_minute"`
	Limits          Limits `json:"limits"`
	// SpendTodayUSD is the estimated spend since 00:00 UTC (the fleet's where infleet keeps
	// usage in the job store, else this process's); BudgetUSD the model's daily budget (0:
	// none).
	SpendTodayUSD float64 `json:"spend_today_usd"`
	BudgetUSD     float64 `json:"budget_usd,omitempty"`
}

// CircuitName names a breaker state (StateClosed, StateHalfOpen, StateOpen).
func CircuitName(state int) string {
	switch state {
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half_open"
	}
	return "closed"
}

// Reports returns every configured model's report, sorted by name, with its daily budget
// from the routing. Safe for concurrent use.
func (p *Picker) Reports() []Report {
	budgets := map[string]float64{}
	for _, b := range p.routing.Load().spec.Budgets {
		if b.Model != "" && b.Tenant == "" {
			budgets[b.Model] = b.DailyUSD
		}
	}
	st := p.fleet.state.Load()
	names := p.fleet.Names()
	out := make([]Report, 0, len(names))
	for _, name := range names {
		ep := st.endpoints[name]
		if ep == nil {
			continue
		}
		s := ep.health.stats.snapshot()
		out = append(out, Report{
			Name: name, ModelID: ep.spec.ModelID, Fallbacks: ep.spec.Fallbacks, Scope: ScopeProcess,
			Circuit: CircuitName(ep.health.breaker.State()), Calls: s.Calls,
			P50Ms: ms(s.P50), P95Ms: ms(s.P95), ErrorRate: s.ErrorRate, ThrottleRate: s.ThrottleRate,
			CallsPerMinute: s.CallsLastMinute, TokensPerMinute: s.TokensLastMinute, Limits: ep.spec.Limits,
			SpendTodayUSD: s.SpendToday, BudgetUSD: budgets[name],
		})
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
