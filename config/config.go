// Package config is infleet's configuration: plain structs mirroring the YAML file, the defaults
// as named constants, and Load, which reads the file, applies INFLEET_* environment overrides,
// validates the result against schemas/config.schema.json and the semantic rules, and fills in
// defaults.
//
// A Config is a value: after Load returns it nothing changes it, and it is safe to read from many
// goroutines. The YAML keys, the JSON Schema and the README's settings table agree; the tests
// check it.
package config

import (
	"cmp"
	"strings"
)

// Defaults of the top-level settings (addr, data_dir; durability is in durability.go), applied by ApplyDefaults (and so by Load) to
// every setting left unset.
const (
	DefaultAddr    = ":8080"
	DefaultDataDir = "./data"
)

// Config is the whole configuration. The zero value plus ApplyDefaults is the embedded default:
// embedded NATS JetStream, SQLite, result files under DataDir and one sim model.
type Config struct {
	// Addr is the HTTP listen address. Default ":8080".
	Addr string `yaml:"addr,omitempty"`
	// DataDir holds the embedded transport, the SQLite store and result files. Default "./data".
	DataDir string `yaml:"data_dir,omitempty"`
	// Durability says what a job answered 202 survives: "process" (a crash of the process) or
	// "fsync" (a power loss too: the embedded queue and SQLite fsync every write). It governs the
	// embedded transport and the SQLite store; the other transports and stores are unaffected.
	// Default "process".
	Durability string    `yaml:"durability,omitempty"`
	Transport  Transport `yaml:"transport,omitempty"`
	Store      Store     `yaml:"store,omitempty"`
	Results    Results   `yaml:"results,omitempty"`
	Notify     Notify    `yaml:"notify,omitempty"`
	Workers    Workers   `yaml:"workers,omitempty"`
	// Models names every model jobs can use. Default: one sim model named "fast" with 20ms latency.
	Models []Model `yaml:"models,omitempty"`
	// Routes maps a task to a model name; the "default" route catches every other task. Default
	// {default: the first model}.
	Routes map[string]string `yaml:"routes,omitempty"`
	// Resilience shapes retries, circuit breakers, the response cache and degradation of
	// every model call.
	Resilience Resilience `yaml:"resilience,omitempty"`
	// Routing adds content rules, weighted splits and adaptive choices to Routes, and says how
	// often the config file is checked for changes.
	Routing Routing `yaml:"routing,omitempty"`
	// Budgets cap a model's estimated daily spend; over the cap its jobs are downgraded.
	Budgets []Budget `yaml:"budgets,omitempty"`
	// Prompts are versioned prompt templates per task.
	Prompts []Prompt `yaml:"prompts,omitempty"`
	// Batching turns on request batching per task. Default none.
	Batching   []Batching `yaml:"batching,omitempty"`
	Guardrails Guardrails `yaml:"guardrails,omitempty"`
	Triggers   Triggers   `yaml:"triggers,omitempty"`
	Auth       Auth       `yaml:"auth,omitempty"`
	HTTP       HTTP       `yaml:"http,omitempty"`
	Archive    Archive    `yaml:"archive,omitempty"`
	Metrics    Metrics    `yaml:"metrics,omitempty"`
	Log        Log        `yaml:"log,omitempty"`
	// Runtime tunes the Go runtime (the garbage collector's heap floor).
	Runtime Runtime `yaml:"runtime,omitempty"`
	// Telemetry exports traces over OTLP and writes CloudWatch Embedded Metric Format lines.
	Telemetry Telemetry `yaml:"telemetry,omitempty"`
	// BatchInference sends jobs to Bedrock batch inference. Default off.
	BatchInference BatchInference `yaml:"batch_inference,omitempty"`
	// Console configures the operator console's sessions.
	Console Console `yaml:"console,omitempty"`
	// Streaming configures the relay of streaming jobs' answers between processes.
	Streaming Streaming `yaml:"streaming,omitempty"`

	// AWSEndpoint is INFLEET_AWS_ENDPOINT: the endpoint of every AWS client whose section sets
	// none (emulators). Not a YAML key. Use AWSEndpoint(c, section) to pick.
	AWSEndpoint string `yaml:"-"`
	// AWSEmulator is INFLEET_AWS_EMULATOR: the endpoint overrides are emulators on purpose, so
	// placeholder credentials may sign for them when the standard chain has none, even when the
	// endpoint is not a loopback address. Not a YAML key. Default false.
	AWSEmulator bool `yaml:"-"`
}

// Default returns the embedded default configuration: the zero Config with defaults applied.
func Default() Config {
	var c Config
	c.ApplyDefaults()
	return c
}

// ApplyDefaults fills every unset setting with its default. It is idempotent. Model slices and
// the routes map are replaced, never modified in place.
func (c *Config) ApplyDefaults() {
	// Each section fills its own settings, in its file. The order matters where a default follows
	// another setting: store.sqlite.path follows data_dir, http.max_body_bytes store.kind, and
	// routes the models.
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.DataDir = cmp.Or(c.DataDir, DefaultDataDir)
	c.Durability = cmp.Or(c.Durability, DefaultDurability)
	c.Transport.applyDefaults()
	c.Store.applyDefaults(c.DataDir)
	c.Results.applyDefaults()
	c.Notify.applyDefaults()
	c.Workers.applyDefaults()
	c.applyModelDefaults()
	c.applyRouteDefaults()
	c.applyBatchingDefaults()
	c.BatchInference.applyDefaults()
	c.Triggers.applyDefaults()
	c.Auth.applyDefaults()
	c.Guardrails.applyDefaults()
	c.HTTP.applyDefaults(c.Store.Kind)
	c.Archive.applyDefaults()
	c.Log.applyDefaults()
	c.Runtime.applyDefaults()
}

// AWSEndpoint returns the endpoint an AWS client of section should use: the section's own
// endpoint key when set, else c.AWSEndpoint (INFLEET_AWS_ENDPOINT), else "" (the SDK's default).
// section is "transport.sqs", "store.dynamodb", "results.s3", "notify.sns",
// "notify.eventbridge" or "models.NAME" (a bedrock model); any other section gets c.AWSEndpoint.
func AWSEndpoint(c Config, section string) string {
	var own string
	switch section {
	case "transport.sqs":
		own = c.Transport.SQS.Endpoint
	case "store.dynamodb":
		own = c.Store.DynamoDB.Endpoint
	case "results.s3":
		own = c.Results.S3.Endpoint
	case "notify.sns":
		own = c.Notify.SNS.Endpoint
	case "notify.eventbridge":
		own = c.Notify.EventBridge.Endpoint
	default:
		if name, ok := strings.CutPrefix(section, "models."); ok {
			m, _ := c.Model(name)
			own = m.Endpoint
		}
	}
	return cmp.Or(own, c.AWSEndpoint)
}
