package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/segmentio/kafka-go/sasl"

	kafkaadapter "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

// openKafka connects the Kafka transport: one topic per priority and the dead-letter topic,
// the workers sharing transport.kafka.group. The topics come from `infleet init`. It first
// proves that the brokers take transport.kafka.tls and transport.kafka.sasl, so that a wrong
// password or certificate stops start-up with the setting to fix.
func (a *app) openKafka(ctx context.Context) error {
	k := a.cfg.Transport.Kafka
	a.topics = pipeline.Topics{High: k.Topics.High, Normal: k.Topics.Normal, Low: k.Topics.Low, Dead: k.DeadLetterTopic}
	cluster, err := a.transportKafkaCluster(ctx)
	if err != nil {
		return err
	}
	log := a.log.With().Str("component", "kafka").Logger()
	pub, err := kafkaadapter.NewPublisher(kafkaadapter.PublisherConfig{
		Brokers: k.Brokers, TLS: cluster.TLS, SASL: cluster.SASL,
		Compression: k.Compression, BatchTimeout: k.Linger, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("transport.kafka: %w", err)
	}
	a.onClose(pub.Close)
	sub, err := kafkaadapter.NewSubscriber(kafkaadapter.SubscriberConfig{
		Brokers: k.Brokers, TLS: cluster.TLS, SASL: cluster.SASL,
		Group: k.Group, MaxInFlight: a.cfg.Unacked(),
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
	cluster, err := a.transportKafkaCluster(ctx)
	if err != nil {
		return err
	}
	err = cluster.EnsureTopics(ctx, k.Partitions, k.ReplicationFactor,
		t.High, t.Normal, t.Low, t.Dead,
		kafkaadapter.RetryTopic(t.High), kafkaadapter.RetryTopic(t.Normal), kafkaadapter.RetryTopic(t.Low))
	if err != nil {
		return err
	}
	if err := cluster.EnsureCompactedTopics(ctx, 1, k.ReplicationFactor, kafkaadapter.RemovedTopic(t.Dead)); err != nil {
		return err
	}
	if n := a.cfg.Notify.Kafka; n.Topic != "" {
		events, _, err := a.notifyKafkaCluster(ctx)
		if err != nil {
			return err
		}
		if err := events.EnsureTopics(ctx, k.Partitions, k.ReplicationFactor, n.Topic); err != nil {
			return fmt.Errorf("notify.kafka.topic: %w", err)
		}
	}
	return nil
}

// kafkaNotifier returns the sink of lifecycle events on notify.kafka.topic, closed with the
// app; nil (and no error) when the topic is not set. It works with any transport.
func (a *app) kafkaNotifier(ctx context.Context) (pipeline.Notifier, error) {
	n := a.cfg.Notify.Kafka
	if n.Topic == "" {
		return nil, nil
	}
	cluster, _, err := a.notifyKafkaCluster(ctx)
	if err != nil {
		return nil, err
	}
	k := a.cfg.Transport.Kafka
	notifier, err := kafkaadapter.NewNotifier(kafkaadapter.NotifierConfig{
		Brokers: cluster.Brokers, TLS: cluster.TLS, SASL: cluster.SASL,
		Topic: n.Topic, Compression: k.Compression, Linger: k.Linger,
		Logger: a.log.With().Str("component", "kafka_notifier").Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("notify.kafka: %w", err)
	}
	a.onClose(notifier.Close)
	return notifier, nil
}

// transportKafkaCluster returns transport.kafka's brokers with their TLS and SASL, checked
// once per process: later calls return the first answer.
func (a *app) transportKafkaCluster(ctx context.Context) (kafkaadapter.Cluster, error) {
	if a.kafka.checked {
		return a.kafka.transport, a.kafka.transportErr
	}
	k := a.cfg.Transport.Kafka
	a.kafka.checked = true
	a.kafka.transport, a.kafka.transportErr = openKafkaCluster(ctx, "transport.kafka", k.Brokers, k.TLS, k.SASL)
	return a.kafka.transport, a.kafka.transportErr
}

// notifyKafkaCluster returns the cluster of notify.kafka and the prefix of the settings it
// follows: notify.kafka's brokers, TLS and SASL when it names brokers, else
// transport.kafka's.
func (a *app) notifyKafkaCluster(ctx context.Context) (kafkaadapter.Cluster, string, error) {
	n := a.cfg.Notify.Kafka
	if len(n.Brokers) > 0 {
		c, err := openKafkaCluster(ctx, "notify.kafka", n.Brokers, n.TLS, n.SASL)
		return c, "notify.kafka", err
	}
	if len(a.cfg.Transport.Kafka.Brokers) == 0 {
		return kafkaadapter.Cluster{}, "", errors.New("notify.kafka: no brokers (set notify.kafka.brokers or transport.kafka.brokers)")
	}
	c, err := a.transportKafkaCluster(ctx)
	return c, "transport.kafka", err
}

// kafkaClusters remembers the transport's cluster once checked, for the notifier and init.
type kafkaClusters struct {
	checked      bool
	transport    kafkaadapter.Cluster
	transportErr error
}

// openKafkaCluster builds the TLS configuration and SASL mechanism of the settings under
// prefix and proves them against brokers (kafkaadapter.Cluster.Check, bounded), returning an
// error that names the setting to fix: prefix.tls, prefix.sasl or prefix.brokers.
func openKafkaCluster(ctx context.Context, prefix string, brokers []string, t config.KafkaTLS, s config.KafkaSASL) (kafkaadapter.Cluster, error) {
	tlsCfg, err := kafkaadapter.NewTLSConfig(kafkaadapter.TLSOptions{
		Enabled: t.Enabled, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
		ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify && t.AllowInsecure,
	})
	if err != nil {
		return kafkaadapter.Cluster{}, fmt.Errorf("%s.tls: %w", prefix, err)
	}
	mech, err := kafkaSASL(ctx, prefix, s)
	if err != nil {
		return kafkaadapter.Cluster{}, err
	}
	cluster := kafkaadapter.Cluster{Brokers: brokers, TLS: tlsCfg, SASL: mech}
	if err := cluster.Check(ctx); err != nil {
		return kafkaadapter.Cluster{}, fmt.Errorf("%s: %w", kafkaCheckSetting(prefix, err), err)
	}
	return cluster, nil
}

// kafkaSASL builds the mechanism of the sasl settings under prefix; aws-msk-iam takes its
// credentials from the AWS SDK's default chain, and its region from aws_region or the chain.
func kafkaSASL(ctx context.Context, prefix string, s config.KafkaSASL) (sasl.Mechanism, error) {
	opts := kafkaadapter.SASLOptions{Mechanism: s.Mechanism, Username: s.Username, Password: s.Password}
	if s.Mechanism == config.KafkaSASLAWSMSKIAM {
		ac, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s.sasl: aws-msk-iam: load the AWS configuration (AWS_PROFILE, AWS_REGION, ~/.aws/config): %w", prefix, err)
		}
		opts.AWSRegion = cmp.Or(s.AWSRegion, ac.Region)
		if opts.AWSRegion == "" {
			return nil, fmt.Errorf("%s.sasl.aws_region: aws-msk-iam needs the cluster's region: set it, or AWS_REGION", prefix)
		}
		if _, err := ac.Credentials.Retrieve(ctx); err != nil {
			return nil, fmt.Errorf("%s.sasl: aws-msk-iam: no AWS credentials: give the process a role, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (%w)", prefix, err)
		}
		opts.AWSCredentials = ac.Credentials
	}
	mech, err := kafkaadapter.NewSASLMechanism(opts)
	if err != nil {
		return nil, fmt.Errorf("%s.sasl: %w", prefix, err)
	}
	return mech, nil
}

// kafkaCheckSetting names the setting behind a failed check under prefix.
func kafkaCheckSetting(prefix string, err error) string {
	var cerr *kafkaadapter.CheckError
	if errors.As(err, &cerr) {
		switch cerr.Stage {
		case kafkaadapter.StageTLS:
			return prefix + ".tls"
		case kafkaadapter.StageSASL:
			return prefix + ".sasl"
		}
	}
	return prefix + ".brokers"
}
