package kafka

import (
	"context"
	"errors"
	"fmt"

	kafkago "github.com/segmentio/kafka-go"
)

// EnsureTopics creates those of topics that do not exist on the cluster at brokers, with
// partitions partitions and replication replicas each; existing topics are left as they are.
// It is idempotent and safe to run from several processes at once.
func EnsureTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	return ensureTopics(ctx, brokers, partitions, replication, nil, topics)
}

// EnsureCompactedTopics is EnsureTopics for topics with cleanup.policy=compact, such as
// RemovedTopic: the newest record of each key is kept for good.
func EnsureCompactedTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	return ensureTopics(ctx, brokers, partitions, replication,
		[]kafkago.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}, topics)
}

func ensureTopics(ctx context.Context, brokers []string, partitions, replication int, configs []kafkago.ConfigEntry, topics []string) error {
	if len(brokers) == 0 {
		return errors.New("ensure kafka topics: no brokers (give at least one host:port)")
	}
	if partitions < 1 || replication < 1 {
		return fmt.Errorf("ensure kafka topics: partitions %d and replication %d must be at least 1", partitions, replication)
	}
	if len(topics) == 0 {
		return nil
	}
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
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
