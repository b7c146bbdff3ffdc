package main

import (
	"context"
	"fmt"

	kafkaadapter "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/pipeline"
)

// Topic layout `infleet init` creates on Kafka when the topics are missing.
const (
	kafkaInitPartitions  = 3
	kafkaInitReplication = 1
)

// openKafka connects the Kafka transport: one topic per priority and the dead-letter topic,
// the workers sharing transport.kafka.group. The topics come from `infleet init`.
func (a *app) openKafka(ctx context.Context) error {
	k := a.cfg.Transport.Kafka
	a.topics = pipeline.Topics{High: k.Topics.High, Normal: k.Topics.Normal, Low: k.Topics.Low, Dead: k.DeadLetterTopic}
	log := a.log.With().Str("component", "kafka").Logger()
	pub, err := kafkaadapter.NewPublisher(kafkaadapter.PublisherConfig{Brokers: k.Brokers, Logger: log})
	if err != nil {
		return fmt.Errorf("transport.kafka: %w", err)
	}
	a.onClose(pub.Close)
	sub, err := kafkaadapter.NewSubscriber(kafkaadapter.SubscriberConfig{
		Brokers: k.Brokers, Group: k.Group, MaxInFlight: a.cfg.Workers.Concurrency, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("transport.kafka: %w", err)
	}
	a.onClose(sub.Close)
	a.publisher, a.subscriber, a.depth = pub, sub, sub
	a.ready = append(a.ready, pipeline.NamedChecker{Name: "queue", Checker: checkFunc(func(ctx context.Context) error {
		_, err := sub.QueueDepth(ctx, a.topics.Normal)
		return err
	})})
	return nil
}

// initKafka creates the missing topics: one per priority with its retry topic, the
// dead-letter topic and its compacted removals topic.
func (a *app) initKafka(ctx context.Context) error {
	t, brokers := a.topics, a.cfg.Transport.Kafka.Brokers
	err := kafkaadapter.EnsureTopics(ctx, brokers, kafkaInitPartitions, kafkaInitReplication,
		t.High, t.Normal, t.Low, t.Dead,
		kafkaadapter.RetryTopic(t.High), kafkaadapter.RetryTopic(t.Normal), kafkaadapter.RetryTopic(t.Low))
	if err != nil {
		return err
	}
	return kafkaadapter.EnsureCompactedTopics(ctx, brokers, 1, kafkaInitReplication, kafkaadapter.RemovedTopic(t.Dead))
}
