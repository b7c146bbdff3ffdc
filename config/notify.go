package config

import (
	"cmp"
	"time"
)

// Defaults of the notify section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultWebhookMaxAttempts = 5
	DefaultEventBridgeSource  = "infleet"
)

// Notify configures the sinks of lifecycle events. A sink is on when its address is set (a job's
// callback_url turns the webhook on for that job).
type Notify struct {
	Webhook     Webhook     `yaml:"webhook,omitempty"`
	SNS         SNS         `yaml:"sns,omitempty"`
	EventBridge EventBridge `yaml:"eventbridge,omitempty"`
	Kafka       NotifyKafka `yaml:"kafka,omitempty"`
	Outbox      Outbox      `yaml:"outbox,omitempty"`
}

// Defaults of the outbox's dispatcher.
const (
	DefaultOutboxLease = 30 * time.Second
	DefaultOutboxPoll  = 500 * time.Millisecond
)

// Outbox configures the delivery of the lifecycle events the job store keeps in its outbox,
// written by the same write as the status they announce. Every worker process runs a
// dispatcher that claims them, delivers them to every sink and deletes them.
type Outbox struct {
	// Lease is how long a dispatcher's claim holds an event: events claimed by a process that
	// dies are delivered by another after it, and one delivery may take two thirds of it.
	// Default 30s.
	Lease time.Duration `yaml:"lease,omitempty"`
	// Poll is how often an idle dispatcher looks for events written by other processes.
	// Default 500ms.
	Poll time.Duration `yaml:"poll,omitempty"`
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
	// TLS and SASL to Brokers, when they are set. Default: transport.kafka.tls and
	// transport.kafka.sasl when Brokers is unset (the transport's cluster), else off.
	TLS  KafkaTLS  `yaml:"tls,omitempty"`
	SASL KafkaSASL `yaml:"sasl,omitempty"`
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

// applyDefaults fills the notify section's unset settings.
func (n *Notify) applyDefaults() {
	n.Webhook.MaxAttempts = cmp.Or(n.Webhook.MaxAttempts, DefaultWebhookMaxAttempts)
	n.EventBridge.Source = cmp.Or(n.EventBridge.Source, DefaultEventBridgeSource)
	n.Outbox.Lease = cmp.Or(n.Outbox.Lease, DefaultOutboxLease)
	n.Outbox.Poll = cmp.Or(n.Outbox.Poll, DefaultOutboxPoll)
}
