package config

import (
	"cmp"
	"time"
)

// Transport kinds (transport.kind).
const (
	TransportEmbedded = "embedded"
	TransportSQS      = "sqs"
	TransportKafka    = "kafka"
)

// Defaults of the transport section, applied by ApplyDefaults (and so by Load) to every setting
// left unset.
const (
	DefaultTransportKind        = TransportEmbedded
	DefaultStreamPrefix         = "INFLEET"
	DefaultSQSQueueHigh         = "infleet-high"
	DefaultSQSQueueNormal       = "infleet-normal"
	DefaultSQSQueueLow          = "infleet-low"
	DefaultSQSDeadLetterQueue   = "infleet-dead"
	DefaultSQSVisibilityTimeout = 60 * time.Second
	DefaultSQSMaxReceiveCount   = 10
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
)

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
	// TLS to the brokers, for every connection: the topics, their retry topics, the
	// dead-letter topic and (unless it names brokers of its own) notify.kafka. Default off.
	TLS KafkaTLS `yaml:"tls,omitempty"`
	// SASL authentication of every connection, as TLS. Default off.
	SASL KafkaSASL `yaml:"sasl,omitempty"`
}

// applyDefaults fills the transport section's unset settings.
func (t *Transport) applyDefaults() {
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
}

// checkTransport checks the chosen transport's section: Kafka has brokers, and no two priorities
// or the dead letters share a queue or topic.
func (c *Config) checkTransport(p *problems) {
	// distinct reports names used for more than one priority or for the dead letters.
	distinct := func(fields, names []string) {
		seen := map[string]string{}
		for i, name := range names {
			if other, dup := seen[name]; dup {
				p.add(fields[i], "%s is also %s; every priority and the dead letters need their own", name, other)
				continue
			}
			seen[name] = fields[i]
		}
	}
	switch t := c.Transport; t.Kind {
	case TransportSQS:
		distinct(
			[]string{"transport.sqs.queues.high", "transport.sqs.queues.normal", "transport.sqs.queues.low", "transport.sqs.dead_letter_queue"},
			[]string{t.SQS.Queues.High, t.SQS.Queues.Normal, t.SQS.Queues.Low, t.SQS.DeadLetterQueue})
	case TransportKafka:
		if len(t.Kafka.Brokers) == 0 {
			p.add("transport.kafka.brokers", "is required when transport.kind is kafka (e.g. [\"127.0.0.1:9092\"] or INFLEET_TRANSPORT_KAFKA_BROKERS=host1:9092,host2:9092)")
		}
		distinct(
			[]string{"transport.kafka.topics.high", "transport.kafka.topics.normal", "transport.kafka.topics.low", "transport.kafka.dead_letter_topic"},
			[]string{t.Kafka.Topics.High, t.Kafka.Topics.Normal, t.Kafka.Topics.Low, t.Kafka.DeadLetterTopic})
	}
}
