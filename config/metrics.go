package config

import (
	"maps"
	"slices"
)

// Metrics configures GET /metrics, which is open by default (Prometheus scrapers carry no API
// key) and then shows nothing that names a tenant.
type Metrics struct {
	// TenantLabels labels the per-tenant series (infleet_tenant_tokens_total,
	// infleet_tenant_cost_usd_total) with tenant names. Default false: they carry tenant="*",
	// the sum over every tenant, so /metrics names no tenant.
	TenantLabels bool `yaml:"tenant_labels,omitempty"`
	// MaxTaskLabels is how many task names, besides those the configuration names (routes,
	// routing, prompts, batching, triggers, batch inference), the per-task series
	// (infleet_jobs_accepted_total, infleet_jobs_finished_total, infleet_job_duration_seconds,
	// infleet_job_retries_total) label by name in each process, in the order the process
	// meets them; jobs of further tasks count under task="_other". A task is any name a client
	// sends, so this bounds the series clients can make. Default 0: 100.
	MaxTaskLabels int `yaml:"max_task_labels,omitempty"`
	// Auth, when set, makes /metrics require a credential (401 without it). Default none.
	Auth MetricsAuth `yaml:"auth,omitempty"`
}

// MetricsAuth protects GET /metrics with a bearer token, HTTP basic auth, or both (either
// credential is then accepted). The secrets live in environment variables, never in the file;
// a named variable that is unset or empty stops start-up.
type MetricsAuth struct {
	// BearerTokenEnv names the environment variable holding the token scrapers send as
	// "Authorization: Bearer TOKEN". Default none.
	BearerTokenEnv string `yaml:"bearer_token_env,omitempty"`
	// Username and PasswordEnv (the environment variable holding the password) turn on HTTP
	// basic auth; they go together. Default none.
	Username    string `yaml:"username,omitempty"`
	PasswordEnv string `yaml:"password_env,omitempty"`
}

// Enabled reports whether /metrics requires a credential.
func (a MetricsAuth) Enabled() bool {
	return a.BearerTokenEnv != "" || a.Username != "" || a.PasswordEnv != ""
}

// checkMetrics checks that basic auth of /metrics names both its user and its password's
// variable.
func (c *Config) checkMetrics(p *problems) {
	if ma := c.Metrics.Auth; (ma.Username == "") != (ma.PasswordEnv == "") {
		p.add("metrics.auth.username", "and metrics.auth.password_env go together (HTTP basic auth); set both or neither")
	}
}

// NamedTasks returns the tasks the configuration names (routes but "default", routing rules,
// splits and adaptive choices, prompts, batching, S3 triggers, batch inference), each once,
// in no particular order.
func (c Config) NamedTasks() []string {
	seen := map[string]bool{}
	add := func(task string) {
		if task != "" && task != DefaultRoute {
			seen[task] = true
		}
	}
	for task := range c.Routes {
		add(task)
	}
	for _, r := range c.Routing.Rules {
		add(r.Task)
	}
	for _, r := range c.Routing.Splits {
		add(r.Task)
	}
	for _, r := range c.Routing.Adaptive {
		add(r.Task)
	}
	for _, p := range c.Prompts {
		add(p.Task)
	}
	for _, b := range c.Batching {
		add(b.Task)
	}
	for _, t := range c.Triggers.S3 {
		add(t.Task)
	}
	for _, task := range c.BatchInference.Tasks {
		add(task)
	}
	return slices.Collect(maps.Keys(seen))
}
