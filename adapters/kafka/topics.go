package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// Cluster is how to reach a Kafka cluster for administration: its bootstrap brokers and,
// optionally, TLS and SASL. Its methods are safe for concurrent use.
type Cluster struct {
	// Brokers are the bootstrap addresses, host:port (required).
	Brokers []string
	// TLS is the client TLS configuration (NewTLSConfig); nil: plaintext.
	TLS *tls.Config
	// SASL authenticates each connection (NewSASLMechanism); nil: no authentication.
	SASL sasl.Mechanism
}

// EnsureTopics creates those of topics that do not exist on the cluster at brokers, with
// partitions partitions and replication replicas each; existing topics are left as they are.
// It is idempotent and safe to run from several processes at once. It connects in
// plaintext without authentication: Cluster.EnsureTopics does the same with TLS and SASL.
func EnsureTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	return Cluster{Brokers: brokers}.EnsureTopics(ctx, partitions, replication, topics...)
}

// EnsureCompactedTopics is EnsureTopics for topics with cleanup.policy=compact, such as
// RemovedTopic: the newest record of each key is kept for good.
func EnsureCompactedTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	return Cluster{Brokers: brokers}.EnsureCompactedTopics(ctx, partitions, replication, topics...)
}

// EnsureTopics creates those of topics that do not exist on c, with partitions partitions
// and replication replicas each; existing topics are left as they are. It is idempotent and
// safe to run from several processes at once.
func (c Cluster) EnsureTopics(ctx context.Context, partitions, replication int, topics ...string) error {
	return c.ensureTopics(ctx, partitions, replication, nil, topics)
}

// EnsureCompactedTopics is EnsureTopics for topics with cleanup.policy=compact, such as
// RemovedTopic: the newest record of each key is kept for good.
func (c Cluster) EnsureCompactedTopics(ctx context.Context, partitions, replication int, topics ...string) error {
	return c.ensureTopics(ctx, partitions, replication,
		[]kafkago.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}, topics)
}

func (c Cluster) ensureTopics(ctx context.Context, partitions, replication int, configs []kafkago.ConfigEntry, topics []string) error {
	if len(c.Brokers) == 0 {
		return errors.New("ensure kafka topics: no brokers (give at least one host:port)")
	}
	if partitions < 1 || replication < 1 {
		return fmt.Errorf("ensure kafka topics: partitions %d and replication %d must be at least 1", partitions, replication)
	}
	if len(topics) == 0 {
		return nil
	}
	rt := newTransport(c.TLS, c.SASL)
	defer closeTransport(rt)
	client := &kafkago.Client{Addr: kafkago.TCP(c.Brokers...), Transport: rt}
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: replication, ConfigEntries: configs})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("ensure kafka topics %v: %w (check that the brokers are reachable)", topics, err)
	}
	var errs []error
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafkago.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %s: %w", topic, terr))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("ensure kafka topics: %w (create them with your cluster's tools, or grant this client CreateTopics)", errors.Join(errs...))
	}
	return nil
}
