package config

import (
	"strings"
	"time"
)

// Defaults of batch_inference, applied by ApplyDefaults (and so by Load) when Model is set.
const (
	DefaultBatchInferenceMinRecords   = 100
	DefaultBatchInferenceMaxWait      = time.Minute
	DefaultBatchInferencePrefix       = "infleet-batches/"
	DefaultBatchInferencePollInterval = 30 * time.Second
	// DefaultBatchInferenceShare is the batch price as a share of the model's on-demand price
	// when batch_inference.price is not set: Bedrock bills batch inference at half.
	DefaultBatchInferenceShare = 0.5
)

// BatchInference sends jobs to Amazon Bedrock's batch inference (model invocation jobs over
// JSONL in S3): the jobs of Tasks, and every job of Priority, are collected for MaxWait in the
// workers and sent as one batch of at least MinRecords (a smaller group is called on demand).
// Off while Model is empty.
type BatchInference struct {
	// Model is the configured bedrock model the batches go to (its api must be invoke_model:
	// records are Anthropic messages bodies). Default none: batch inference off.
	Model string `yaml:"model,omitempty"`
	// Tasks whose jobs go to batch inference. Default none.
	Tasks []string `yaml:"tasks,omitempty"`
	// Priority whose jobs go to batch inference, e.g. low. Default none.
	Priority string `yaml:"priority,omitempty"`
	// MinRecords is the fewest records a batch is sent with. Default 100 (Bedrock's minimum).
	MinRecords int `yaml:"min_records,omitempty"`
	// MaxWait is how long a worker collects a batch after its first job. Default 1m; keep it
	// under the transport's ack deadline, since the deliveries wait with their jobs.
	MaxWait time.Duration `yaml:"max_wait,omitempty"`
	// Bucket of the batches' input and output. Required with Model.
	Bucket string `yaml:"bucket,omitempty"`
	// Prefix of the batches' keys in Bucket. Default infleet-batches/.
	Prefix string `yaml:"prefix,omitempty"`
	// RoleARN is the service role Bedrock reads and writes the bucket with. Required with Model.
	RoleARN string `yaml:"role_arn,omitempty"`
	// PollInterval spaces the polls of the batch jobs. Default 30s.
	PollInterval time.Duration `yaml:"poll_interval,omitempty"`
	// Price is the batch price per million tokens. Default half the model's price.
	Price *Price `yaml:"price,omitempty"`
}

// Enabled reports whether batch inference is on.
func (b BatchInference) Enabled() bool { return b.Model != "" }

// BatchPrice returns the batch price of the configured batch model: Price, or half the
// model's on-demand price.
func (c Config) BatchPrice() Price {
	if c.BatchInference.Price != nil {
		return *c.BatchInference.Price
	}
	m, _ := c.Model(c.BatchInference.Model)
	return Price{Input: m.Price.Input * DefaultBatchInferenceShare, Output: m.Price.Output * DefaultBatchInferenceShare}
}

func (b *BatchInference) applyDefaults() {
	if !b.Enabled() {
		return
	}
	if b.MinRecords == 0 {
		b.MinRecords = DefaultBatchInferenceMinRecords
	}
	if b.MaxWait == 0 {
		b.MaxWait = DefaultBatchInferenceMaxWait
	}
	if b.Prefix == "" {
		b.Prefix = DefaultBatchInferencePrefix
	}
	if b.PollInterval == 0 {
		b.PollInterval = DefaultBatchInferencePollInterval
	}
}

// checkBatchInference checks that the batch model is a bedrock model and the batches have a
// bucket, a role and jobs to take.
func (c *Config) checkBatchInference(p *problems) {
	b := c.BatchInference
	if !b.Enabled() {
		if len(b.Tasks) > 0 || b.Priority != "" {
			p.add("batch_inference.model", "is required with batch_inference.tasks or priority: name a bedrock model")
		}
		return
	}
	if m, ok := c.Model(b.Model); !ok {
		p.add("batch_inference.model", "%s is not a configured model (add it to models)", b.Model)
	} else if m.Provider != ProviderBedrock {
		p.add("batch_inference.model", "%s is a %s model; batch inference needs a bedrock model", b.Model, m.Provider)
	}
	if len(b.Tasks) == 0 && b.Priority == "" {
		p.add("batch_inference.tasks", "name the tasks (or set batch_inference.priority) whose jobs go to batch inference")
	}
	switch b.Priority {
	case "", "high", "normal", "low":
	default:
		p.add("batch_inference.priority", "%q is not a priority (use high, normal or low)", b.Priority)
	}
	if b.Bucket == "" {
		p.add("batch_inference.bucket", "is required: the S3 bucket of the batches' input and output")
	}
	if !strings.HasPrefix(b.RoleARN, "arn:") {
		p.add("batch_inference.role_arn", "is required: the ARN of the service role Bedrock reads and writes the bucket with")
	}
	if b.MinRecords < 1 {
		p.add("batch_inference.min_records", "must be at least 1 (Bedrock takes batches of 100 records or more)")
	}
	if b.MaxWait < 0 {
		p.add("batch_inference.max_wait", "must not be negative (e.g. 1m)")
	}
	if b.PollInterval < 0 {
		p.add("batch_inference.poll_interval", "must not be negative (e.g. 30s)")
	}
	if b.Price != nil && (b.Price.Input < 0 || b.Price.Output < 0) {
		p.add("batch_inference.price", "must not be negative")
	}
}
