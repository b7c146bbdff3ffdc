package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Model providers (models[].provider).
const (
	ProviderSim     = "sim"
	ProviderBedrock = "bedrock"
	ProviderOpenAI  = "openai"
)

// Defaults of the models section (the default model, models[].timeout), applied by ApplyDefaults
// (and so by Load) to every setting left unset.
const (
	DefaultModelName     = "fast"
	DefaultModelProvider = ProviderSim
	DefaultModelLatency  = 20 * time.Millisecond
	DefaultModelTimeout  = 60 * time.Second
)

// Model says how to reach one model.
type Model struct {
	// Name that routes, fallbacks and jobs use. Required, unique.
	Name string `yaml:"name,omitempty"`
	// Provider is sim, bedrock or openai (any OpenAI-compatible chat-completions server).
	// Required.
	Provider string `yaml:"provider,omitempty"`
	// Latency of a sim model's answers (the median when LatencyDist is set). Default 0 (20ms
	// for the default model).
	Latency time.Duration `yaml:"latency,omitempty"`
	// LatencyDist of a sim model: fixed, uniform, normal or lognormal. Default fixed.
	LatencyDist string `yaml:"latency_dist,omitempty"`
	// LatencyP99 is the 99th percentile latency of a sim model's LatencyDist. Default Latency.
	LatencyP99 time.Duration `yaml:"latency_p99,omitempty"`
	// FailRate is the share of a sim model's calls, 0 to 1, that fail with a retryable error.
	// Default 0.
	FailRate float64 `yaml:"fail_rate,omitempty"`
	// BaseURL of an openai server, e.g. http://127.0.0.1:9000/v1. Required for openai.
	BaseURL string `yaml:"base_url,omitempty"`
	// ModelID is the provider's model id. Required for openai and bedrock.
	ModelID string `yaml:"model_id,omitempty"`
	// Region of a bedrock model. Default: the AWS SDK's chain.
	Region string `yaml:"region,omitempty"`
	// Endpoint of a bedrock model, overriding INFLEET_AWS_ENDPOINT. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
	// API of a bedrock model: converse (any model) or invoke_model (the Anthropic messages
	// body). Default converse.
	API string `yaml:"api,omitempty"`
	// Timeout of one call. Default 60s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// Fallbacks are model names tried in order when retries are spent or the circuit is open.
	Fallbacks []string `yaml:"fallbacks,omitempty"`
	// APIKeyEnv names the environment variable holding an openai server's API key. Default
	// none (no Authorization header).
	APIKeyEnv string `yaml:"api_key_env,omitempty"`
	// MaxConcurrency bounds calls in flight to this model per process. Default 0 (only
	// workers.concurrency bounds them).
	MaxConcurrency int `yaml:"max_concurrency,omitempty"`
	// RPM bounds requests per minute to this model per process. Default 0 (no bound).
	RPM int `yaml:"rpm,omitempty"`
	// TPM bounds tokens per minute (estimated before the call, actual after) per process.
	// Default 0 (no bound).
	TPM int `yaml:"tpm,omitempty"`
	// Price of the model, for cost figures and budgets. Default none (cost 0).
	Price Price `yaml:"price,omitempty"`
}

// Model returns the model named name and whether it is configured.
func (c Config) Model(name string) (Model, bool) {
	for _, m := range c.Models {
		if m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

// Price is a model's price in US dollars per million tokens.
type Price struct {
	Input  float64 `yaml:"input,omitempty"`
	Output float64 `yaml:"output,omitempty"`
}

// Budget caps a model's or a tenant's estimated spend per UTC day (per process). Set model,
// tenant or both (a tenant's cap that downgrades only that model's calls).
type Budget struct {
	Model  string `yaml:"model,omitempty"`
	Tenant string `yaml:"tenant,omitempty"`
	// DailyUSD is the cap in US dollars.
	DailyUSD float64 `yaml:"daily_usd,omitempty"`
	// DowngradeTo is the model jobs go to while the cap is reached. Required with Model; a
	// tenant budget without it refuses the tenant's new jobs (429) while the cap is reached.
	DowngradeTo string `yaml:"downgrade_to,omitempty"`
}

// Prompt is one version of a task's prompt template (Go text/template with .Input, .Task and
// .Metadata). A job picks a version with metadata prompt_version; default the highest.
type Prompt struct {
	Task string `yaml:"task,omitempty"`
	// Version is MAJOR.MINOR.PATCH.
	Version string `yaml:"version,omitempty"`
	// System becomes the system prompt.
	System string `yaml:"system,omitempty"`
	// Template replaces the input text.
	Template string `yaml:"template,omitempty"`
}

// applyModelDefaults gives a config without models the default sim model, and every model
// but a sim its call timeout.
func (c *Config) applyModelDefaults() {
	if len(c.Models) == 0 {
		c.Models = []Model{{Name: DefaultModelName, Provider: DefaultModelProvider, Latency: DefaultModelLatency}}
	} else {
		c.Models = append([]Model(nil), c.Models...)
	}
	for i := range c.Models {
		m := &c.Models[i]
		if m.Provider != ProviderSim {
			m.Timeout = cmp.Or(m.Timeout, DefaultModelTimeout)
		}
	}
}

// checkModels checks that model names are unique, that each provider's required settings are
// set, and that fallbacks name other configured models, each once.
func (c *Config) checkModels(p *problems) {
	seen := map[string]int{}
	for i, m := range c.Models {
		field := "models[" + strconv.Itoa(i) + "]"
		if j, dup := seen[m.Name]; dup {
			p.add(field+".name", "%s is already the name of models[%d]; model names must be unique", m.Name, j)
		} else {
			seen[m.Name] = i
		}
		switch m.Provider {
		case ProviderOpenAI:
			if m.BaseURL == "" {
				p.add(field+".base_url", "is required for provider openai (e.g. http://127.0.0.1:9000/v1)")
			}
			if m.ModelID == "" {
				p.add(field+".model_id", "is required for provider openai (e.g. gpt-4o-mini)")
			}
		case ProviderBedrock:
			if m.ModelID == "" {
				p.add(field+".model_id", "is required for provider bedrock (e.g. anthropic.claude-sonnet-4-20250514)")
			}
		}
		for j, fb := range m.Fallbacks {
			ff := field + ".fallbacks[" + strconv.Itoa(j) + "]"
			switch {
			case fb == m.Name:
				p.add(ff, "is the model itself; name another model")
			case slices.Index(m.Fallbacks, fb) < j:
				p.add(ff, "repeats %s; list each fallback once", fb)
			default:
				if _, ok := c.Model(fb); !ok {
					p.add(ff, "names model %s, which is not configured; %s", fb, c.modelHint())
				}
			}
		}
	}
}

// modelHint lists the configured models, for problems that name a model that is not one.
func (c *Config) modelHint() string {
	names := make([]string, len(c.Models))
	for i, m := range c.Models {
		names[i] = m.Name
	}
	return "configured models: " + strings.Join(names, ", ")
}
