package kafka_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	infkafka "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestNotifierWritesEvents publishes two events of one job and reads them back in order from
// one partition: key = job id, value = the event's JSON, the type in a header.
func TestNotifierWritesEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	topic := b.topic(t, 3)
	n, err := infkafka.NewNotifier(infkafka.NotifierConfig{Brokers: b.brokers, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	events := []messages.Event{
		{Type: "job.failed", JobID: "job-7", Status: messages.StatusFailed, Task: "summarize", Tenant: "acme",
			Error: &messages.JobError{Code: "model_error", Message: "down"}, OccurredAt: at},
		{Type: "job.completed", JobID: "job-7", Status: messages.StatusCompleted, Task: "summarize", Tenant: "acme",
			ResultURL: "/v1/jobs/job-7/result", OccurredAt: at.Add(time.Second)},
	}
	for _, e := range events {
		if err := n.Notify(ctx, pipeline.Notification{Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: b.brokers, GroupID: "events_" + newID(), Topic: topic,
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	partition := -1
	for i, want := range events {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got messages.Event
		if err := json.Unmarshal(m.Value, &got); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != "job-7" || got.Type != want.Type || got.Status != want.Status || !got.OccurredAt.Equal(want.OccurredAt) ||
			len(m.Headers) != 1 || m.Headers[0].Key != infkafka.HeaderEventType || string(m.Headers[0].Value) != want.Type {
			t.Fatalf("event %d: key %q headers %v value %s", i, m.Key, m.Headers, m.Value)
		}
		if partition >= 0 && m.Partition != partition {
			t.Fatalf("the job's events went to partitions %d and %d", partition, m.Partition)
		}
		partition = m.Partition
	}
	if _, err := infkafka.NewNotifier(infkafka.NotifierConfig{Compression: "brotli"}); err == nil {
		t.Fatal("a notifier without brokers, topic or a known compression was accepted")
	}
}
