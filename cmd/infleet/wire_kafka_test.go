package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestKafkaNotifier checks the notify.kafka wiring: off without a topic, an error naming the
// fix without brokers, and on kfake (brokers taken from transport.kafka, topic created by
// init) an event keyed by its job id.
func TestKafkaNotifier(t *testing.T) {
	t.Parallel()
	newTestApp := func(cfg config.Config) *app {
		cfg.ApplyDefaults()
		a := &app{cfg: cfg}
		t.Cleanup(func() { _ = a.close() })
		return a
	}
	if n, err := newTestApp(config.Config{}).kafkaNotifier(context.Background()); n != nil || err != nil {
		t.Fatalf("without notify.kafka.topic: %v, %v; want nil, nil", n, err)
	}
	if _, err := newTestApp(config.Config{Notify: config.Notify{Kafka: config.NotifyKafka{Topic: "events"}}}).kafkaNotifier(context.Background()); err == nil {
		t.Fatal("a notifier without brokers was built")
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	var cfg config.Config
	cfg.Transport.Kind = config.TransportKafka
	cfg.Transport.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Notify.Kafka.Topic = "infleet.events"
	a := newTestApp(cfg)
	a.topics = pipeline.Topics{High: "h", Normal: "n", Low: "l", Dead: "d"}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.initKafka(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := a.kafkaNotifier(context.Background())
	if err != nil || n == nil {
		t.Fatalf("kafkaNotifier: %v, %v", n, err)
	}
	ev := messages.Event{Type: "job.completed", JobID: "job-1", Status: messages.StatusCompleted, Task: "summarize", OccurredAt: time.Now().UTC()}
	if err := n.Notify(ctx, pipeline.Notification{Event: ev}); err != nil {
		t.Fatal(err)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cfg.Transport.Kafka.Brokers, GroupID: "events", Topic: "infleet.events",
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got messages.Event
	if err := json.Unmarshal(m.Value, &got); err != nil || string(m.Key) != "job-1" || got.Type != ev.Type || got.JobID != ev.JobID {
		t.Fatalf("record key %q value %s (%v)", m.Key, m.Value, err)
	}
}
