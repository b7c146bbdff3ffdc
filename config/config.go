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
	"math"
	"path/filepath"
	"strings"
	"time"
)

// Transport kinds (transport.kind).
const (
	TransportEmbedded = "embedded"
	TransportSQS      = "sqs"
	TransportKafka    = "kafka"
)

// Job store kinds (store.kind).
const (
	StoreSQLite   = "sqlite"
	StoreDynamoDB = "dynamodb"
	StorePostgres = "postgres"
)

// Result store kinds (results.kind).
const (
	ResultsFile = "file"
	ResultsS3   = "s3"
)

// Model providers (models[].provider).
const (
	ProviderSim     = "sim"
	ProviderBedrock = "bedrock"
	ProviderOpenAI  = "openai"
)

// DefaultRoute is the routes key whose model runs every task without a route of its own.
const DefaultRoute = "default"

// Defaults, applied by ApplyDefaults (and so by Load) to every setting left unset.
const (
	DefaultAddr                 = ":8080"
	DefaultDataDir              = "./data"
	DefaultTransportKind        = TransportEmbedded
	DefaultStoreKind            = StoreSQLite
	DefaultResultsKind          = ResultsFile
	DefaultSQLiteFile           = "infleet.db" // under data_dir
	DefaultStreamPrefix         = "INFLEET"
	DefaultArchiveRetention     = 7 * 24 * time.Hour
	DefaultStoreRetention       = 30 * 24 * time.Hour
	DefaultRetentionInterval    = time.Minute
	DefaultSQSQueueHigh         = "infleet-high"
	DefaultSQSQueueNormal       = "infleet-normal"
	DefaultSQSQueueLow          = "infleet-low"
	DefaultSQSDeadLetterQueue   = "infleet-dead"
	DefaultSQSVisibilityTimeout = 60 * time.Second
	DefaultSQSMaxReceiveCount   = 10
	DefaultS3PresignTTL         = 15 * time.Minute
	DefaultS3MaxInputBytes      = 1 << 20
	DefaultKafkaTopicHigh       = "infleet.high"
	DefaultKafkaTopicNormal     = "infleet.normal"
	DefaultKafkaTopicLow        = "infleet.low"
	DefaultKafkaDeadLetterTopic = "infleet.dead"
	DefaultKafkaGroup           = "infleet-workers"
	DefaultKafkaPartitions      = 3
	DefaultKafkaReplication     = 1
	DefaultKafkaCompression     = "snappy"
	DefaultKafkaLinger          = 5 * time.Millisecond
	DefaultKafkaSessionTimeout  = 30 * time.Second
	DefaultWebhookMaxAttempts   = 5
	DefaultEventBridgeSource    = "infleet"
	DefaultConcurrency          = 64
	DefaultMaxAttempts          = 5
	DefaultWeightHigh           = 6
	DefaultWeightNormal         = 3
	DefaultWeightLow            = 1
	DefaultRetryBackoffInitial  = time.Second
	DefaultRetryBackoffMax      = time.Minute
	DefaultShutdownTimeout      = 30 * time.Second
	DefaultJobTimeout           = 10 * time.Minute
	DefaultModelName            = "fast"
	DefaultModelProvider        = ProviderSim
	DefaultModelLatency         = 20 * time.Millisecond
	DefaultModelTimeout         = 60 * time.Second
	DefaultMaxBodyBytes         = 1 << 20
	// DefaultDynamoDBMaxBodyBytes is the body limit with store.kind dynamodb, whose items
	// (a job record holds its request) are at most 400 KB.
	DefaultDynamoDBMaxBodyBytes = 256 << 10
	// MaxDynamoDBBodyBytes is the largest http.max_body_bytes allowed with store.kind dynamodb.
	MaxDynamoDBBodyBytes      = 384 << 10
	DefaultMaxWait            = 60 * time.Second
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "auto"
	DefaultTriggerPriority    = "normal"
	DefaultPIIAction          = "ANONYMIZE"
	DefaultJWTTenantClaim     = "tenant"
	DefaultJWTTaskScopePrefix = "task:"
	DefaultJWTOperatorScope   = "operator"
	DefaultJWTLeeway          = 30 * time.Second
)

// Defaults of the HTTP server's bounds (the http section).
const (
	// DefaultReadHeaderTimeout, DefaultReadTimeout, DefaultWriteTimeout and DefaultIdleTimeout
	// bound how long a connection may take over a request's head, a whole request, an answer
	// and the wait for the next request.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 75 * time.Second
	// DefaultMaxHeaderBytes caps a request's head (request line and headers).
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxInflightBodyBytes caps the request-body bytes held in memory across requests.
	DefaultMaxInflightBodyBytes = 64 << 20
)

// Config is the whole configuration. The zero value plus ApplyDefaults is the embedded default:
// embedded NATS JetStream, SQLite, result files under DataDir and one sim model.
type Config struct {
	// Addr is the HTTP listen address. Default ":8080".
	Addr string `yaml:"addr,omitempty"`
	// DataDir holds the embedded transport, the SQLite store and result files. Default "./data".
	DataDir   string    `yaml:"data_dir,omitempty"`
	Transport Transport `yaml:"transport,omitempty"`
	Store     Store     `yaml:"store,omitempty"`
	Results   Results   `yaml:"results,omitempty"`
	Notify    Notify    `yaml:"notify,omitempty"`
	Workers   Workers   `yaml:"workers,omitempty"`
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
	Prompts    []Prompt   `yaml:"prompts,omitempty"`
	Guardrails Guardrails `yaml:"guardrails,omitempty"`
	Triggers   Triggers   `yaml:"triggers,omitempty"`
	Auth       Auth       `yaml:"auth,omitempty"`
	HTTP       HTTP       `yaml:"http,omitempty"`
	Archive    Archive    `yaml:"archive,omitempty"`
	Metrics    Metrics    `yaml:"metrics,omitempty"`
	Log        Log        `yaml:"log,omitempty"`

	// AWSEndpoint is INFLEET_AWS_ENDPOINT: the endpoint of every AWS client whose section sets
	// none (emulators). Not a YAML key. Use AWSEndpoint(c, section) to pick.
	AWSEndpoint string `yaml:"-"`
}

// Transport chooses and configures the queues jobs travel on.
type Transport struct {
	// Kind is embedded, sqs or kafka. Default embedded.
	Kind     string   `yaml:"kind,omitempty"`
	Embedded Embedded `yaml:"embedded,omitempty"`
	SQS      SQS      `yaml:"sqs,omitempty"`
	Kafka    Kafka    `yaml:"kafka,omitempty"`
}

// Embedded configures the in-process NATS JetStream transport, stored under DataDir.
type Embedded struct {
	// StreamPrefix prefixes the JetStream stream names. Default "INFLEET".
	StreamPrefix string `yaml:"stream_prefix,omitempty"`
}

// Archive keeps every accepted job message for replay, in the result store.
type Archive struct {
	// Retention is how long archived job messages are kept, and so how far back `infleet
	// replay` reaches. Default 168h.
	Retention time.Duration `yaml:"retention,omitempty"`
}

// PriorityNames names one queue or topic per priority.
type PriorityNames struct {
	High   string `yaml:"high,omitempty"`
	Normal string `yaml:"normal,omitempty"`
	Low    string `yaml:"low,omitempty"`
}

// SQS configures Amazon SQS: one queue per priority, dead letters by the queues' redrive policy.
type SQS struct {
	// Queues are names or URLs. Default infleet-high, infleet-normal, infleet-low.
	Queues PriorityNames `yaml:"queues,omitempty"`
	// DeadLetterQueue is where the redrive policy sends jobs; read by `infleet dlq`. Default
	// "infleet-dead".
	DeadLetterQueue string `yaml:"dead_letter_queue,omitempty"`
	// VisibilityTimeout of received messages, extended while a job runs. Default 60s.
	VisibilityTimeout time.Duration `yaml:"visibility_timeout,omitempty"`
	// MaxReceiveCount is the redrive policy `infleet init` gives the queues: a message
	// received this many times without success (a crash loop) moves to the dead-letter queue.
	// Keep it above workers.max_attempts. Default 10.
	MaxReceiveCount int `yaml:"max_receive_count,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// Kafka configures Apache Kafka: one topic per priority and a dead-letter topic.
type Kafka struct {
	// Brokers are host:port seed brokers. Required when transport.kind is kafka.
	Brokers []string `yaml:"brokers,omitempty"`
	// Topics default to infleet.high, infleet.normal, infleet.low.
	Topics PriorityNames `yaml:"topics,omitempty"`
	// DeadLetterTopic receives jobs that ran out of attempts. Default "infleet.dead".
	DeadLetterTopic string `yaml:"dead_letter_topic,omitempty"`
	// Group is the consumer group of the workers. Default "infleet-workers".
	Group string `yaml:"group,omitempty"`
	// Partitions is the partition count of the topics `infleet init` creates. Default 3.
	Partitions int `yaml:"partitions,omitempty"`
	// ReplicationFactor is the replica count of the topics `infleet init` creates. Default 1.
	ReplicationFactor int `yaml:"replication_factor,omitempty"`
	// Compression of produced batches: none, gzip, snappy, lz4 or zstd. Default snappy.
	Compression string `yaml:"compression,omitempty"`
	// Linger is the longest a produced message waits for others to fill its batch. Default 5ms.
	Linger time.Duration `yaml:"linger,omitempty"`
	// SessionTimeout is how long the group waits for a silent worker (one that was killed)
	// before giving its partitions to others. Default 30s.
	SessionTimeout time.Duration `yaml:"session_timeout,omitempty"`
}

// Store chooses and configures the job store.
type Store struct {
	// Kind is sqlite, dynamodb or postgres. Default sqlite.
	Kind string `yaml:"kind,omitempty"`
	// Retention is how long a finished job (COMPLETED, FAILED or CANCELLED) is kept after its
	// last update; then it is deleted with its result and idempotency key. On sqlite and
	// postgres a reaper in every serve and worker process deletes it; on dynamodb it is the
	// default of DynamoDB.Retention. nil (unset) means 720h; 0 keeps finished jobs forever.
	// Read it with RetentionPeriod.
	Retention *time.Duration `yaml:"retention,omitempty"`
	// RetentionInterval is how often each reaper looks for expired jobs. Default 1m.
	RetentionInterval time.Duration `yaml:"retention_interval,omitempty"`
	SQLite            SQLite        `yaml:"sqlite,omitempty"`
	DynamoDB          DynamoDB      `yaml:"dynamodb,omitempty"`
	Postgres          Postgres      `yaml:"postgres,omitempty"`
}

// SQLite configures the SQLite job store.
type SQLite struct {
	// Path of the database file. Default {data_dir}/infleet.db.
	Path string `yaml:"path,omitempty"`
}

// DynamoDB configures the DynamoDB job store.
type DynamoDB struct {
	// Table name. Required when store.kind is dynamodb.
	Table string `yaml:"table,omitempty"`
	// Retention is how long finished jobs are kept before DynamoDB's TTL removes them.
	// Default store.retention (an unset or 0 value takes it).
	Retention time.Duration `yaml:"retention,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// Postgres configures the PostgreSQL job store.
type Postgres struct {
	// DSN is the connection string. Required when store.kind is postgres. A secret: never log it.
	DSN string `yaml:"dsn,omitempty"`
}

// Results chooses and configures where results are stored.
type Results struct {
	// Kind is file ({data_dir}/results/{job_id}.json) or s3. Default file.
	Kind string `yaml:"kind,omitempty"`
	S3   S3     `yaml:"s3,omitempty"`
}

// S3 configures the S3 result store: objects {prefix}{job_id}.json.
type S3 struct {
	// Bucket name. Required when results.kind is s3.
	Bucket string `yaml:"bucket,omitempty"`
	// Prefix of the object keys, e.g. "results/". Default "".
	Prefix string `yaml:"prefix,omitempty"`
	// SSE is the server-side encryption of written objects: "", AES256 or aws:kms. Default ""
	// (the bucket's default).
	SSE string `yaml:"sse,omitempty"`
	// KMSKeyID is the KMS key for SSE aws:kms. Default "" (the account's S3 key).
	KMSKeyID string `yaml:"kms_key_id,omitempty"`
	// Presign makes GET /v1/jobs/{id}/result redirect to a presigned URL instead of streaming
	// the object through the API. Default false.
	Presign bool `yaml:"presign,omitempty"`
	// PresignTTL is how long a presigned result URL stays valid. Default 15m.
	PresignTTL time.Duration `yaml:"presign_ttl,omitempty"`
	// MaxInputBytes caps the size of an input given as s3_uri. Default 1 MiB.
	MaxInputBytes int64 `yaml:"max_input_bytes,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client (path-style). Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// Notify configures the sinks of lifecycle events. A sink is on when its address is set (a job's
// callback_url turns the webhook on for that job).
type Notify struct {
	Webhook     Webhook     `yaml:"webhook,omitempty"`
	SNS         SNS         `yaml:"sns,omitempty"`
	EventBridge EventBridge `yaml:"eventbridge,omitempty"`
	Kafka       NotifyKafka `yaml:"kafka,omitempty"`
}

// Webhook configures signed webhook delivery.
type Webhook struct {
	// URL receives every job's events; a job's callback_url wins. Default "" (only callback_url).
	URL string `yaml:"url,omitempty"`
	// Secret signs the Infleet-Signature header. A secret: never log it. Default "".
	Secret string `yaml:"secret,omitempty"`
	// AllowPrivate lets webhooks reach loopback, private and link-local addresses. Default false.
	AllowPrivate bool `yaml:"allow_private,omitempty"`
	// AllowHTTP accepts http:// callback URLs at submit. Default false (https only).
	AllowHTTP bool `yaml:"allow_http,omitempty"`
	// MaxAttempts per event delivery, with backoff. Default 5.
	MaxAttempts int `yaml:"max_attempts,omitempty"`
}

// NotifyKafka configures publishing lifecycle events to a Kafka topic (key = job id, value =
// the event's JSON).
type NotifyKafka struct {
	// Topic turns the sink on. Default "" (off).
	Topic string `yaml:"topic,omitempty"`
	// Brokers are host:port seed brokers. Default transport.kafka.brokers.
	Brokers []string `yaml:"brokers,omitempty"`
}

// SNS configures publishing events to an SNS topic.
type SNS struct {
	// TopicARN turns the sink on. Default "" (off).
	TopicARN string `yaml:"topic_arn,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// EventBridge configures putting events on an EventBridge bus (detail-type = event type).
type EventBridge struct {
	// Bus name or ARN turns the sink on. Default "" (off).
	Bus string `yaml:"bus,omitempty"`
	// Source of the events. Default "infleet".
	Source string `yaml:"source,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// Workers configures job processing.
type Workers struct {
	// Concurrency is how many jobs one process runs at once. Default 64.
	Concurrency int `yaml:"concurrency,omitempty"`
	// MaxAttempts before a job fails and is dead-lettered. Default 5.
	MaxAttempts int `yaml:"max_attempts,omitempty"`
	// PriorityWeights share the workers among the priority queues. Default 6/3/1.
	PriorityWeights PriorityWeights `yaml:"priority_weights,omitempty"`
	// Strict serves higher priorities first whenever they have work, instead of by weight; the
	// same as priority_weights.strict (either turns it on; Load sets both). Default false.
	Strict bool `yaml:"strict,omitempty"`
	// RetryBackoff is the delay between attempts, doubling from Initial up to Max.
	RetryBackoff RetryBackoff `yaml:"retry_backoff,omitempty"`
	// ShutdownTimeout bounds how long in-flight jobs may finish on shutdown before they are
	// cancelled and handed back. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout,omitempty"`
	// JobTimeout bounds one attempt of a job. Default 10m.
	JobTimeout time.Duration `yaml:"job_timeout,omitempty"`
}

// PriorityWeights are relative shares of the workers per priority.
type PriorityWeights struct {
	// High weight. Default 6.
	High int `yaml:"high,omitempty"`
	// Normal weight. Default 3.
	Normal int `yaml:"normal,omitempty"`
	// Low weight. Default 1.
	Low int `yaml:"low,omitempty"`
	// Strict is workers.strict, spelled as the contract's "priority_weights: ... or strict: true".
	Strict bool `yaml:"strict,omitempty"`
}

// RetryBackoff is an exponential backoff between attempts.
type RetryBackoff struct {
	// Initial delay. Default 1s.
	Initial time.Duration `yaml:"initial,omitempty"`
	// Max delay. Default 1m.
	Max time.Duration `yaml:"max,omitempty"`
}

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

// Price is a model's price in US dollars per million tokens.
type Price struct {
	Input  float64 `yaml:"input,omitempty"`
	Output float64 `yaml:"output,omitempty"`
}

// Resilience shapes every model call: retries with exponential backoff and full jitter, a
// retry budget, a circuit breaker per model, the response cache and the degradation message.
// Zero values take the defaults of package pipeline/models.
type Resilience struct {
	// MaxAttempts per model, the first included. Default 4.
	MaxAttempts int `yaml:"max_attempts,omitempty"`
	// Backoff between attempts (full jitter): doubling from Initial (default 100ms) up to Max
	// (default 5s).
	Backoff RetryBackoff `yaml:"backoff,omitempty"`
	// Deadline bounds all attempts on one model, waits included. Default 60s.
	Deadline time.Duration `yaml:"deadline,omitempty"`
	// MaxRetryAfter is the longest Retry-After honoured; longer moves to the fallback. Default 30s.
	MaxRetryAfter time.Duration `yaml:"max_retry_after,omitempty"`
	// RetryBudget keeps retries a bounded share of calls per model.
	RetryBudget RetryBudget `yaml:"retry_budget,omitempty"`
	// Breaker is the circuit breaker of each model.
	Breaker Breaker `yaml:"breaker,omitempty"`
	// Cache is the exact-match response cache. Default off.
	Cache Cache `yaml:"cache,omitempty"`
	// DegradedMessage is the answer of a job no model could answer (the result says degraded).
	// Default "" (the job fails or retries instead).
	DegradedMessage string `yaml:"degraded_message,omitempty"`
}

// RetryBudget is a token bucket of retries per model.
type RetryBudget struct {
	// Ratio of calls that may be retried. Default 0.2.
	Ratio float64 `yaml:"ratio,omitempty"`
	// Reserve is the retries allowed beyond the ratio. Default 10.
	Reserve int `yaml:"reserve,omitempty"`
}

// Breaker is a circuit breaker: it opens after Failures consecutive failures, or when Ratio
// of at least MinCalls calls in a Window failed; after OpenFor one probe decides.
type Breaker struct {
	// Failures in a row that open the circuit. Default 5.
	Failures int `yaml:"failures,omitempty"`
	// Ratio of failed calls in a window that opens the circuit. Default 0.5.
	Ratio float64 `yaml:"ratio,omitempty"`
	// MinCalls in a window before Ratio applies. Default 20.
	MinCalls int `yaml:"min_calls,omitempty"`
	// Window over which Ratio is counted. Default 10s.
	Window time.Duration `yaml:"window,omitempty"`
	// OpenFor is how long the circuit stays open before a probe. Default 5s.
	OpenFor time.Duration `yaml:"open_for,omitempty"`
}

// Cache is the exact-match response cache (model, prompt and parameters).
type Cache struct {
	// TTL of an entry; 0 turns the cache off. Default 0.
	TTL time.Duration `yaml:"ttl,omitempty"`
	// MaxEntries bounds the cache. Default 10000.
	MaxEntries int `yaml:"max_entries,omitempty"`
}

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

// Guardrails are content policies applied to job input (before the model) and output.
type Guardrails struct {
	Input  GuardrailPolicies `yaml:"input,omitempty"`
	Output GuardrailPolicies `yaml:"output,omitempty"`
	// Bedrock applies an Amazon Bedrock guardrail to input and output, after the built-in
	// policies (or instead of them when none are set). Default none.
	Bedrock *BedrockGuardrail `yaml:"bedrock,omitempty"`
}

// Enabled reports whether any policy is configured.
func (g Guardrails) Enabled() bool {
	return g.Input.Enabled() || g.Output.Enabled() || (g.Bedrock != nil && g.Bedrock.GuardrailID != "")
}

// BedrockGuardrail names a guardrail of Amazon Bedrock, applied with ApplyGuardrail.
type BedrockGuardrail struct {
	// GuardrailID is the guardrail's identifier or ARN. Required.
	GuardrailID string `yaml:"guardrail_id,omitempty"`
	// GuardrailVersion is a version number or DRAFT. Default DRAFT.
	GuardrailVersion string `yaml:"guardrail_version,omitempty"`
	// Region of Bedrock. Default AWS_REGION.
	Region string `yaml:"region,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// GuardrailPolicies are the policies of one side (input or output).
type GuardrailPolicies struct {
	// PII detects entities and anonymizes or blocks them. Default none.
	PII *PIIPolicy `yaml:"pii,omitempty"`
	// DeniedTopics block content about these topics. Default none.
	DeniedTopics []DeniedTopic `yaml:"denied_topics,omitempty"`
	// Words block content containing any of these words. Default none.
	Words []string `yaml:"words,omitempty"`
	// WordFilter sets how words (and the managed profanity list) are acted on. Default: block.
	WordFilter *WordFilter `yaml:"word_filter,omitempty"`
	// PromptAttack detects instruction-override and role-play jailbreaks (input). Default off.
	PromptAttack *PromptAttack `yaml:"prompt_attack,omitempty"`
	// Grounding scores the answer against the job's context and question (output). Default off.
	Grounding *Grounding `yaml:"grounding,omitempty"`
	// TopicClassifier also asks a model whether the text is about a denied topic. Default off.
	TopicClassifier *TopicClassifier `yaml:"topic_classifier,omitempty"`
}

// TopicClassifier names the model that classifies texts against the denied topics.
type TopicClassifier struct {
	// Model is a configured model's name. Required.
	Model string `yaml:"model,omitempty"`
}

// Enabled reports whether any policy of this side is configured.
func (p GuardrailPolicies) Enabled() bool {
	return p.PII != nil || len(p.DeniedTopics) > 0 || len(p.Words) > 0 ||
		(p.WordFilter != nil && p.WordFilter.Profanity) || (p.PromptAttack != nil && p.PromptAttack.Enabled) ||
		(p.Grounding != nil && (p.Grounding.GroundingThreshold > 0 || p.Grounding.RelevanceThreshold > 0))
}

// PIIPolicy detects personal data.
type PIIPolicy struct {
	// Entities are entity types such as EMAIL, PHONE, CREDIT_CARD, US_SSN. Required.
	Entities []string `yaml:"entities,omitempty"`
	// Action is ANONYMIZE, BLOCK or NONE (detect and report only). Default ANONYMIZE.
	Action string `yaml:"action,omitempty"`
	// EntityActions override Action for single entity types. Default none.
	EntityActions []EntityAction `yaml:"entity_actions,omitempty"`
	// Custom are named regular expressions detected like entities. Default none.
	Custom []CustomPattern `yaml:"custom,omitempty"`
	// AnonymizeWith is placeholder ({EMAIL}) or token ({EMAIL_1}, stable within a job). Default
	// placeholder.
	AnonymizeWith string `yaml:"anonymize_with,omitempty"`
	// Message is the job's error message when this policy blocks. Default names the types.
	Message string `yaml:"message,omitempty"`
	// RestoreInOutput puts the values anonymized on input back into the stored answer (input
	// side, anonymize_with token only). Default false.
	RestoreInOutput bool `yaml:"restore_in_output,omitempty"`
}

// EntityAction is the action for one entity type.
type EntityAction struct {
	Type   string `yaml:"type,omitempty"`
	Action string `yaml:"action,omitempty"`
}

// CustomPattern is a named regular expression (RE2 syntax) treated as an entity type.
type CustomPattern struct {
	Name    string `yaml:"name,omitempty"`
	Pattern string `yaml:"pattern,omitempty"`
	// Action overrides the policy's action for this pattern. Default the policy's.
	Action string `yaml:"action,omitempty"`
}

// DeniedTopic is a topic jobs may not be about.
type DeniedTopic struct {
	Name       string   `yaml:"name,omitempty"`
	Definition string   `yaml:"definition,omitempty"`
	Examples   []string `yaml:"examples,omitempty"`
	// Phrases name the topic on their own. Default none.
	Phrases []string `yaml:"phrases,omitempty"`
	// MinKeywords is how many distinct keywords of the topic a text must hold when no phrase
	// matches. Default 2.
	MinKeywords int `yaml:"min_keywords,omitempty"`
	// Message is the job's error message when this topic blocks. Default names the topic.
	Message string `yaml:"message,omitempty"`
}

// WordFilter configures the word policy.
type WordFilter struct {
	// Profanity adds the managed profanity list. Default false.
	Profanity bool `yaml:"profanity,omitempty"`
	// Action is BLOCK or MASK. Default BLOCK.
	Action string `yaml:"action,omitempty"`
	// Mask replaces each filtered word under MASK. Default "***".
	Mask string `yaml:"mask,omitempty"`
	// Message is the job's error message when a word blocks. Default generic.
	Message string `yaml:"message,omitempty"`
}

// PromptAttack configures prompt-attack detection.
type PromptAttack struct {
	Enabled bool `yaml:"enabled,omitempty"`
	// Message is the job's error message when an attack blocks. Default generic.
	Message string `yaml:"message,omitempty"`
}

// Grounding configures contextual grounding of answers to jobs that give a context.
type Grounding struct {
	// GroundingThreshold is the least share of the answer's content words found in the
	// context, 0 to 0.99; 0 turns the check off. Default 0.
	GroundingThreshold float64 `yaml:"grounding_threshold,omitempty"`
	// RelevanceThreshold is the least share of the question's content words the answer takes
	// up, 0 to 0.99; 0 turns the check off. Default 0.
	RelevanceThreshold float64 `yaml:"relevance_threshold,omitempty"`
	// Action is BLOCK or NONE (report only). Default BLOCK.
	Action string `yaml:"action,omitempty"`
	// Message is the job's error message when grounding blocks. Default gives the score.
	Message string `yaml:"message,omitempty"`
}

// Triggers turn outside events into jobs.
type Triggers struct {
	// S3 rules turn created objects into jobs (S3 notification or EventBridge event); the first
	// matching rule wins.
	S3 []S3Trigger `yaml:"s3,omitempty"`
}

// S3Trigger maps objects of a bucket (and optional key prefix and suffix) to a job.
type S3Trigger struct {
	Bucket string `yaml:"bucket,omitempty"`
	Prefix string `yaml:"prefix,omitempty"`
	Suffix string `yaml:"suffix,omitempty"`
	Task   string `yaml:"task,omitempty"`
	// Model of the jobs. Default: the task's route.
	Model string `yaml:"model,omitempty"`
	// Priority of the jobs. Default normal.
	Priority string `yaml:"priority,omitempty"`
}

// Auth turns on authentication. With no API keys and no JWT issuer the API is open.
type Auth struct {
	APIKeys []APIKey `yaml:"api_keys,omitempty"`
	JWT     JWT      `yaml:"jwt,omitempty"`
}

// Enabled reports whether requests must authenticate.
func (a Auth) Enabled() bool { return len(a.APIKeys) > 0 || a.JWT.JWKSURL != "" }

// Quota periods (auth.api_keys[].quota_period, auth.jwt.quota_period).
const (
	QuotaDay   = "day"
	QuotaMonth = "month"
)

// Roles of a credential (auth.api_keys[].role).
const (
	RoleClient   = "client"
	RoleOperator = "operator"
)

// JWT accepts bearer tokens signed by an OIDC provider (Cognito or any other).
type JWT struct {
	// Issuer is the required iss claim. Required with JWKSURL.
	Issuer string `yaml:"issuer,omitempty"`
	// Audience is the required aud claim (or client_id, as Cognito access tokens carry). Default
	// none (not checked).
	Audience string `yaml:"audience,omitempty"`
	// JWKSURL serves the signing keys; setting it turns JWT authentication on.
	JWKSURL string `yaml:"jwks_url,omitempty"`
	// TenantClaim names the claim holding the tenant. Default "tenant".
	TenantClaim string `yaml:"tenant_claim,omitempty"`
	// TaskScopePrefix prefixes the scopes that allow a task ("task:summarize", "task:*").
	// Default "task:".
	TaskScopePrefix string `yaml:"task_scope_prefix,omitempty"`
	// OperatorScope is the scope that grants the operator role. Default "operator".
	OperatorScope string `yaml:"operator_scope,omitempty"`
	// Leeway is the clock skew allowed on exp and nbf. Default 30s.
	Leeway time.Duration `yaml:"leeway,omitempty"`
	// Rate, Burst, Quota and QuotaPeriod limit each tenant's token holders together, as for
	// an API key. Default unlimited.
	Rate        float64 `yaml:"rate,omitempty"`
	Burst       int     `yaml:"burst,omitempty"`
	Quota       int64   `yaml:"quota,omitempty"`
	QuotaPeriod string  `yaml:"quota_period,omitempty"`
}

// APIKey is one client credential (x-api-key) and what it may do.
type APIKey struct {
	// Key is the secret the client sends, in plain text (development). Never log it.
	Key string `yaml:"key,omitempty"`
	// KeySHA256 is the lowercase hex SHA-256 of the secret (production); give it or Key.
	KeySHA256 string `yaml:"key_sha256,omitempty"`
	// Role is client (its tenant's jobs only) or operator (every job, operator routes).
	// Default client.
	Role string `yaml:"role,omitempty"`
	// Tenant owns the jobs created with this key; other tenants cannot see them.
	Tenant string `yaml:"tenant,omitempty"`
	// Rate is requests per second. Default 0 (unlimited).
	Rate float64 `yaml:"rate,omitempty"`
	// Burst of requests above Rate. Default max(1, Rate rounded up) when Rate is set.
	Burst int `yaml:"burst,omitempty"`
	// Quota is the number of jobs the key may create per QuotaPeriod. Default 0 (unlimited).
	Quota int64 `yaml:"quota,omitempty"`
	// QuotaPeriod is day or month (UTC calendar periods). Default month.
	QuotaPeriod string `yaml:"quota_period,omitempty"`
	// Tasks the key may submit; "*" allows any. Default (empty) any.
	Tasks []string `yaml:"tasks,omitempty"`
	// Models the key may ask for by name; "*" allows any. Default (empty) any.
	Models []string `yaml:"models,omitempty"`
}

// HTTP configures the HTTP API.
type HTTP struct {
	// MaxBodyBytes is the largest accepted request body (413 above). Default 1 MiB (256 KiB
	// with store.kind dynamodb, at most 384 KiB there: DynamoDB items hold 400 KB).
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty"`
	// MaxWait caps Prefer: wait=N. Default 60s.
	MaxWait time.Duration `yaml:"max_wait,omitempty"`
	// MaxInflightBodyBytes caps the bytes of request bodies held in memory at once, across all
	// requests; a body that finds no room within a short wait is refused with 503 and
	// Retry-After. Buffers are charged as they grow with what arrived, not with what
	// Content-Length announced. At least MaxBodyBytes. Default 64 MiB.
	MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes,omitempty"`
	// MaxHeaderBytes caps a request's head (request line and headers); larger is 431.
	// Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes,omitempty"`
	// ReadHeaderTimeout bounds reading a request's head. At most ReadTimeout. Default 10s, or
	// ReadTimeout when shorter.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout,omitempty"`
	// ReadTimeout bounds reading a whole request, body included; a body still arriving then
	// is answered 408. It does not bound the work on a request once read. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout,omitempty"`
	// WriteTimeout bounds the time from the end of a request's head to the end of its answer;
	// Prefer: wait=N gets N more, and an event stream gets WriteTimeout for each event. At
	// least ReadTimeout. Default 60s, or ReadTimeout when longer.
	WriteTimeout time.Duration `yaml:"write_timeout,omitempty"`
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	// Default 75s (longer than the 60s idle timeout of AWS load balancers, so they close
	// first).
	IdleTimeout time.Duration `yaml:"idle_timeout,omitempty"`
	// CORSOrigins are the browser origins allowed to call the API ("*" for any). Default none.
	CORSOrigins []string `yaml:"cors_origins,omitempty"`
	// TLSCertFile and TLSKeyFile (PEM) make the API serve HTTPS. Default none (plain HTTP).
	TLSCertFile string `yaml:"tls_cert_file,omitempty"`
	TLSKeyFile  string `yaml:"tls_key_file,omitempty"`
}

// Metrics configures GET /metrics, which is open by default (Prometheus scrapers carry no API
// key) and then shows nothing that names a tenant.
type Metrics struct {
	// TenantLabels labels the per-tenant series (infleet_tenant_tokens_total,
	// infleet_tenant_cost_usd_total) with tenant names. Default false: they carry tenant="*",
	// the sum over every tenant, so /metrics names no tenant.
	TenantLabels bool `yaml:"tenant_labels,omitempty"`
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

// Log configures logging.
type Log struct {
	// Level is trace, debug, info, warn or error. Default info.
	Level string `yaml:"level,omitempty"`
	// Format is json, pretty (for people) or auto (pretty on a terminal, else json). Default auto.
	Format string `yaml:"format,omitempty"`
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
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	c.DataDir = cmp.Or(c.DataDir, DefaultDataDir)

	t := &c.Transport
	t.Kind = cmp.Or(t.Kind, DefaultTransportKind)
	t.Embedded.StreamPrefix = cmp.Or(t.Embedded.StreamPrefix, DefaultStreamPrefix)
	t.SQS.Queues.High = cmp.Or(t.SQS.Queues.High, DefaultSQSQueueHigh)
	t.SQS.Queues.Normal = cmp.Or(t.SQS.Queues.Normal, DefaultSQSQueueNormal)
	t.SQS.Queues.Low = cmp.Or(t.SQS.Queues.Low, DefaultSQSQueueLow)
	t.SQS.DeadLetterQueue = cmp.Or(t.SQS.DeadLetterQueue, DefaultSQSDeadLetterQueue)
	t.SQS.VisibilityTimeout = cmp.Or(t.SQS.VisibilityTimeout, DefaultSQSVisibilityTimeout)
	t.SQS.MaxReceiveCount = cmp.Or(t.SQS.MaxReceiveCount, DefaultSQSMaxReceiveCount)
	t.Kafka.Topics.High = cmp.Or(t.Kafka.Topics.High, DefaultKafkaTopicHigh)
	t.Kafka.Topics.Normal = cmp.Or(t.Kafka.Topics.Normal, DefaultKafkaTopicNormal)
	t.Kafka.Topics.Low = cmp.Or(t.Kafka.Topics.Low, DefaultKafkaTopicLow)
	t.Kafka.DeadLetterTopic = cmp.Or(t.Kafka.DeadLetterTopic, DefaultKafkaDeadLetterTopic)
	t.Kafka.Group = cmp.Or(t.Kafka.Group, DefaultKafkaGroup)
	t.Kafka.Partitions = cmp.Or(t.Kafka.Partitions, DefaultKafkaPartitions)
	t.Kafka.ReplicationFactor = cmp.Or(t.Kafka.ReplicationFactor, DefaultKafkaReplication)
	t.Kafka.Compression = cmp.Or(t.Kafka.Compression, DefaultKafkaCompression)
	t.Kafka.Linger = cmp.Or(t.Kafka.Linger, DefaultKafkaLinger)
	t.Kafka.SessionTimeout = cmp.Or(t.Kafka.SessionTimeout, DefaultKafkaSessionTimeout)

	c.Store.Kind = cmp.Or(c.Store.Kind, DefaultStoreKind)
	c.Store.SQLite.Path = cmp.Or(c.Store.SQLite.Path, filepath.Join(c.DataDir, DefaultSQLiteFile))
	if c.Store.Retention == nil {
		c.Store.Retention = new(DefaultStoreRetention)
	}
	c.Store.RetentionInterval = cmp.Or(c.Store.RetentionInterval, DefaultRetentionInterval)
	c.Store.DynamoDB.Retention = cmp.Or(c.Store.DynamoDB.Retention, *c.Store.Retention)
	c.Results.Kind = cmp.Or(c.Results.Kind, DefaultResultsKind)

	c.Notify.Webhook.MaxAttempts = cmp.Or(c.Notify.Webhook.MaxAttempts, DefaultWebhookMaxAttempts)
	c.Notify.EventBridge.Source = cmp.Or(c.Notify.EventBridge.Source, DefaultEventBridgeSource)
	c.Results.S3.PresignTTL = cmp.Or(c.Results.S3.PresignTTL, DefaultS3PresignTTL)
	c.Results.S3.MaxInputBytes = cmp.Or(c.Results.S3.MaxInputBytes, DefaultS3MaxInputBytes)

	w := &c.Workers
	w.Concurrency = cmp.Or(w.Concurrency, DefaultConcurrency)
	w.MaxAttempts = cmp.Or(w.MaxAttempts, DefaultMaxAttempts)
	w.PriorityWeights.High = cmp.Or(w.PriorityWeights.High, DefaultWeightHigh)
	w.PriorityWeights.Normal = cmp.Or(w.PriorityWeights.Normal, DefaultWeightNormal)
	w.PriorityWeights.Low = cmp.Or(w.PriorityWeights.Low, DefaultWeightLow)
	w.Strict = w.Strict || w.PriorityWeights.Strict
	w.PriorityWeights.Strict = w.Strict
	w.RetryBackoff.Initial = cmp.Or(w.RetryBackoff.Initial, DefaultRetryBackoffInitial)
	w.RetryBackoff.Max = cmp.Or(w.RetryBackoff.Max, DefaultRetryBackoffMax)
	w.ShutdownTimeout = cmp.Or(w.ShutdownTimeout, DefaultShutdownTimeout)
	w.JobTimeout = cmp.Or(w.JobTimeout, DefaultJobTimeout)

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
	if len(c.Routes) == 0 {
		c.Routes = map[string]string{DefaultRoute: c.Models[0].Name}
	}
	if len(c.Triggers.S3) > 0 {
		c.Triggers.S3 = append([]S3Trigger(nil), c.Triggers.S3...)
		for i := range c.Triggers.S3 {
			c.Triggers.S3[i].Priority = cmp.Or(c.Triggers.S3[i].Priority, DefaultTriggerPriority)
		}
	}
	if len(c.Auth.APIKeys) > 0 {
		c.Auth.APIKeys = append([]APIKey(nil), c.Auth.APIKeys...)
		for i := range c.Auth.APIKeys {
			k := &c.Auth.APIKeys[i]
			if k.Rate > 0 && k.Burst == 0 {
				k.Burst = max(1, int(math.Ceil(k.Rate)))
			}
			k.Role = cmp.Or(k.Role, RoleClient)
			k.QuotaPeriod = cmp.Or(k.QuotaPeriod, QuotaMonth)
		}
	}
	if j := &c.Auth.JWT; j.JWKSURL != "" {
		j.TenantClaim = cmp.Or(j.TenantClaim, DefaultJWTTenantClaim)
		j.TaskScopePrefix = cmp.Or(j.TaskScopePrefix, DefaultJWTTaskScopePrefix)
		j.OperatorScope = cmp.Or(j.OperatorScope, DefaultJWTOperatorScope)
		j.Leeway = cmp.Or(j.Leeway, DefaultJWTLeeway)
		j.QuotaPeriod = cmp.Or(j.QuotaPeriod, QuotaMonth)
		if j.Rate > 0 && j.Burst == 0 {
			j.Burst = max(1, int(math.Ceil(j.Rate)))
		}
	}
	for _, side := range []*GuardrailPolicies{&c.Guardrails.Input, &c.Guardrails.Output} {
		if side.PII != nil {
			pii := *side.PII
			pii.Action = cmp.Or(pii.Action, DefaultPIIAction)
			side.PII = &pii
		}
	}

	if c.Store.Kind == StoreDynamoDB {
		c.HTTP.MaxBodyBytes = cmp.Or(c.HTTP.MaxBodyBytes, DefaultDynamoDBMaxBodyBytes)
	}
	c.HTTP.MaxBodyBytes = cmp.Or(c.HTTP.MaxBodyBytes, DefaultMaxBodyBytes)
	c.HTTP.MaxWait = cmp.Or(c.HTTP.MaxWait, DefaultMaxWait)
	c.HTTP.MaxInflightBodyBytes = cmp.Or(c.HTTP.MaxInflightBodyBytes, DefaultMaxInflightBodyBytes)
	c.HTTP.MaxHeaderBytes = cmp.Or(c.HTTP.MaxHeaderBytes, DefaultMaxHeaderBytes)
	c.HTTP.ReadTimeout = cmp.Or(c.HTTP.ReadTimeout, DefaultReadTimeout)
	c.HTTP.ReadHeaderTimeout = cmp.Or(c.HTTP.ReadHeaderTimeout, min(DefaultReadHeaderTimeout, c.HTTP.ReadTimeout))
	c.HTTP.WriteTimeout = cmp.Or(c.HTTP.WriteTimeout, max(DefaultWriteTimeout, c.HTTP.ReadTimeout))
	c.HTTP.IdleTimeout = cmp.Or(c.HTTP.IdleTimeout, DefaultIdleTimeout)
	c.Archive.Retention = cmp.Or(c.Archive.Retention, DefaultArchiveRetention)
	c.Log.Level = cmp.Or(c.Log.Level, DefaultLogLevel)
	c.Log.Format = cmp.Or(c.Log.Format, DefaultLogFormat)
}

// RetentionPeriod returns how long finished jobs are kept: store.retention, DefaultStoreRetention
// when it is unset; 0 means forever.
func (s Store) RetentionPeriod() time.Duration {
	if s.Retention == nil {
		return DefaultStoreRetention
	}
	return *s.Retention
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
