package main

import (
	"context"
	"errors"
	"fmt"

	kafkaadapter "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

// openKafka connects the Kafka transport: one topic per priority and the dead-letter topic,
// the workers sharing transport.kafka.group. The topics come from `infleet init`.
func (a *app) openKafka(ctx context.Context) error {
	k := a.cfg.Transport.Kafka
	a.topics = pipeline.Topics{High: k.Topics.High, Normal: k.Topics.Normal, Low: k.Topics.Low, Dead: k.DeadLetterTopic}
	log := a.log.With().Str("component", "kafka").Logger()
	pub, err := kafkaadapter.NewPublisher(kafkaadapter.PublisherConfig{
		Brokers: k.Brokers, Compression: k.Compression, BatchTimeout: k.Linger, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("transport.kafka: %w", err)
	}
	a.onClose(pub.Close)
	sub, err := kafkaadapter.NewSubscriber(kafkaadapter.SubscriberConfig{
		Brokers: k.Brokers, Group: k.Group, MaxInFlight: a.cfg.Workers.InFlight(),
		// A member heartbeats ten times per session timeout, so a live one is never taken
		// for dead.
		SessionTimeout: k.SessionTimeout, RebalanceTimeout: k.SessionTimeout, HeartbeatInterval: k.SessionTimeout / 10,
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("transport.kafka: %w", err)
	}
	a.onClose(sub.Close)
	// The subscriber is also the pipeline.DeadLetterBox of the dead-letter topic (operations).
	a.publisher, a.subscriber, a.depth = pub, sub, sub
	a.ready = append(a.ready, intake.NamedChecker{Name: "queue", Checker: checkFunc(func(ctx context.Context) error {
		_, err := sub.QueueDepth(ctx, a.topics.Normal)
		return err
	})})
	return nil
}

// initKafka creates the missing topics with transport.kafka.partitions and
// replication_factor: one per priority with its retry topic, the dead-letter topic and its
// compacted removals topic (one partition), and the notify.kafka.topic when set.
func (a *app) initKafka(ctx context.Context) error {
	k, t := a.cfg.Transport.Kafka, a.topics
	err := kafkaadapter.EnsureTopics(ctx, k.Brokers, k.Partitions, k.ReplicationFactor,
		t.High, t.Normal, t.Low, t.Dead,
		kafkaadapter.RetryTopic(t.High), kafkaadapter.RetryTopic(t.Normal), kafkaadapter.RetryTopic(t.Low))
	if err != nil {
		return err
	}
	if err := kafkaadapter.EnsureCompactedTopics(ctx, k.Brokers, 1, k.ReplicationFactor, kafkaadapter.RemovedTopic(t.Dead)); err != nil {
		return err
	}
	if n := a.cfg.Notify.Kafka; n.Topic != "" {
		if err := kafkaadapter.EnsureTopics(ctx, a.notifyKafkaBrokers(), k.Partitions, k.ReplicationFactor, n.Topic); err != nil {
			return fmt.Errorf("notify.kafka.topic: %w", err)
		}
	}
	return nil
}

// notifyKafkaBrokers are notify.kafka.brokers, else transport.kafka.brokers.
func (a *app) notifyKafkaBrokers() []string {
	if b := a.cfg.Notify.Kafka.Brokers; len(b) > 0 {
		return b
	}
	return a.cfg.Transport.Kafka.Brokers
}

// kafkaNotifier returns the sink of lifecycle events on notify.kafka.topic, closed with the
// app; nil (and no error) when the topic is not set. It works with any transport.
func (a *app) kafkaNotifier() (pipeline.Notifier, error) {
	n := a.cfg.Notify.Kafka
	if n.Topic == "" {
		return nil, nil
	}
	brokers := a.notifyKafkaBrokers()
	if len(brokers) == 0 {
		return nil, errors.New("notify.kafka: no brokers (set notify.kafka.brokers or transport.kafka.brokers)")
	}
	k := a.cfg.Transport.Kafka
	notifier, err := kafkaadapter.NewNotifier(kafkaadapter.NotifierConfig{
		Brokers: brokers, Topic: n.Topic, Compression: k.Compression, Linger: k.Linger,
		Logger: a.log.With().Str("component", "kafka_notifier").Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("notify.kafka: %w", err)
	}
	a.onClose(notifier.Close)
	return notifier, nil
}
