package config

import (
	"slices"
	"strconv"
	"time"
)

// DefaultRoute is the routes key whose model runs every task without a route of its own.
const DefaultRoute = "default"

// Routing adds to Routes. Rules are tried first, then the task's split, its adaptive choice,
// then Routes.
type Routing struct {
	// Rules send jobs matching their content to a model; the first match wins.
	Rules []RouteRule `yaml:"rules,omitempty"`
	// Splits share a task's jobs among models by weight, sticky by job key.
	Splits []RouteSplit `yaml:"splits,omitempty"`
	// Adaptive picks among models by live p95 latency and error rate.
	Adaptive []RouteAdaptive `yaml:"adaptive,omitempty"`
	// ReloadInterval is how often the config file is checked for changes to models, routes,
	// routing, resilience, budgets and prompts (when the process was started with one).
	// Default 5s.
	ReloadInterval time.Duration `yaml:"reload_interval,omitempty"`
	// ReloadFrom is an S3 object (s3://bucket/key) holding a config document whose models,
	// routes, routing, resilience, budgets and prompts the workers follow instead of the config
	// file's: checked every ReloadInterval by its ETag, validated against the schema first.
	// Default "" (follow the config file).
	ReloadFrom string `yaml:"reload_from,omitempty"`
}

// RouteRule is a content rule; every condition set must hold.
type RouteRule struct {
	// Name of the rule, for logs. Default rules[i].
	Name string `yaml:"name,omitempty"`
	// Task the rule applies to. Default every task.
	Task string `yaml:"task,omitempty"`
	// MinChars and MaxChars bound the input's length in characters.
	MinChars int `yaml:"min_chars,omitempty"`
	MaxChars int `yaml:"max_chars,omitempty"`
	// Language of the input by script: latin, zh, ja, ko, cyrillic, arabic, greek, hebrew,
	// devanagari, thai.
	Language string `yaml:"language,omitempty"`
	// Keywords: any of them in the input, case-insensitively.
	Keywords []string `yaml:"keywords,omitempty"`
	// Regex matching the input (RE2).
	Regex string `yaml:"regex,omitempty"`
	// Metadata keys the job's metadata must hold with these values.
	Metadata map[string]string `yaml:"metadata,omitempty"`
	// Model the matching jobs go to. Required.
	Model string `yaml:"model,omitempty"`
}

// RouteSplit shares a task's jobs among weighted models (A/B, canary).
type RouteSplit struct {
	// Task of the split; "default" for tasks with no route and no split of their own.
	Task     string         `yaml:"task,omitempty"`
	Variants []RouteVariant `yaml:"variants,omitempty"`
}

// RouteVariant is one arm of a split.
type RouteVariant struct {
	Model  string `yaml:"model,omitempty"`
	Weight int    `yaml:"weight,omitempty"`
}

// RouteAdaptive picks the healthy model with the lowest live p95 latency for a task.
type RouteAdaptive struct {
	Task   string   `yaml:"task,omitempty"`
	Models []string `yaml:"models,omitempty"`
	// MaxErrorRate above which a model is avoided. Default 0.2.
	MaxErrorRate float64 `yaml:"max_error_rate,omitempty"`
}

// applyRouteDefaults routes every task to the first model when no routes are set.
func (c *Config) applyRouteDefaults() {
	if len(c.Routes) == 0 {
		c.Routes = map[string]string{DefaultRoute: c.Models[0].Name}
	}
}

// checkRoutes checks that routes are task names that name configured models, and that the
// default route is there.
func (c *Config) checkRoutes(p *problems) {
	tasks := make([]string, 0, len(c.Routes))
	for task := range c.Routes {
		tasks = append(tasks, task)
	}
	slices.Sort(tasks)
	for _, task := range tasks {
		model := c.Routes[task]
		field := "routes." + task
		if !identOK(task) {
			field = "routes[" + strconv.Quote(task) + "]"
			p.add(field, "is not a task name: it must start with a letter or digit and contain only letters, digits and . _ : -")
		}
		if _, ok := c.Model(model); !ok {
			p.add(field, "names model %s, which is not configured; %s", model, c.modelHint())
		}
	}
	if _, ok := c.Routes[DefaultRoute]; !ok {
		p.add("routes.default", "is required: name the model of tasks without a route of their own (e.g. default: %s)", c.Models[0].Name)
	}
}

// identOK matches the schema's task and model names: ^[A-Za-z0-9][A-Za-z0-9._:-]*$, at most 128.
func identOK(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		alnum := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
		if !alnum && (i == 0 || (ch != '.' && ch != '_' && ch != ':' && ch != '-')) {
			return false
		}
	}
	return true
}
