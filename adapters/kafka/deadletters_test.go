package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	infkafka "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/pipeline"
)

type scanned struct {
	id      string
	payload string
	md      map[string]string
}

func scanAll(t *testing.T, box pipeline.DeadLetterBox, topic string) []scanned {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var out []scanned
	err := box.ScanDeadLetters(ctx, topic, func(id string, payload []byte, md map[string]string) bool {
		out = append(out, scanned{id, string(payload), md})
		return true
	})
	if err != nil {
		t.Fatalf("scan %s: %v", topic, err)
	}
	return out
}

// TestDeadLetterBox keeps messages on a dead-letter topic, scans them oldest first with their
// metadata, removes one and checks that a scan by another subscriber (another process) skips
// it, that removing it again is harmless and that a missing topic holds nothing.
func TestDeadLetterBox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dead := b.topic(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := infkafka.EnsureCompactedTopics(ctx, b.brokers, 1, 1, infkafka.RemovedTopic(dead)); err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, b)
	for i := range 4 {
		m := message.NewMessage(newID(), fmt.Appendf(nil, `{"n":%d}`, i))
		m.Metadata.Set(infkafka.MetaJobID, fmt.Sprint("job-", i))
		m.Metadata.Set("dead_reason", "model_error: down")
		if err := pub.Publish(dead, m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct record times: the scan orders by them
	}
	sub1 := newSubscriber(t, subscriberConfig(b, newGroup()))
	all := scanAll(t, sub1, dead)
	if len(all) != 4 {
		t.Fatalf("scanned %d dead letters, want 4: %+v", len(all), all)
	}
	for i, dl := range all {
		if dl.payload != fmt.Sprintf(`{"n":%d}`, i) || dl.md[infkafka.MetaJobID] != fmt.Sprint("job-", i) ||
			dl.md["dead_reason"] != "model_error: down" || dl.md[infkafka.HeaderUUID] != "" {
			t.Fatalf("dead letter %d: %+v", i, dl)
		}
	}
	if err := sub1.RemoveDeadLetter(ctx, dead, all[1].id); err != nil {
		t.Fatal(err)
	}
	if err := sub1.RemoveDeadLetter(ctx, dead, all[1].id); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if err := sub1.RemoveDeadLetter(ctx, dead, "not-an-id"); err == nil {
		t.Fatal("a malformed id was accepted")
	}

	sub2 := newSubscriber(t, subscriberConfig(b, newGroup()))
	left := scanAll(t, sub2, dead)
	if len(left) != 3 {
		t.Fatalf("after a removal: %d dead letters, want 3: %+v", len(left), left)
	}
	for _, dl := range left {
		if dl.id == all[1].id {
			t.Fatalf("the removed dead letter %s is still listed", dl.id)
		}
	}
	if got := scanAll(t, sub2, "missing_"+watermill.NewShortUUID()); len(got) != 0 {
		t.Fatalf("a missing topic listed %d dead letters", len(got))
	}
}

// TestRemovalsOfExpiredDeadLettersAreForgotten removes a dead letter, lets retention delete
// its record (DeleteRecords), and checks that the next scan writes a tombstone for its removal
// so the compacted removals topic does not grow for ever.
func TestRemovalsOfExpiredDeadLettersAreForgotten(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dead := b.topic(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := infkafka.EnsureCompactedTopics(ctx, b.brokers, 1, 1, infkafka.RemovedTopic(dead)); err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, b)
	publishN(t, pub, dead, 2)
	sub := newSubscriber(t, subscriberConfig(b, newGroup()))
	all := scanAll(t, sub, dead)
	if len(all) != 2 || all[0].id != "0-0" {
		t.Fatalf("scanned %+v", all)
	}
	if err := sub.RemoveDeadLetter(ctx, dead, all[0].id); err != nil {
		t.Fatal(err)
	}

	// Retention deletes the first record.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = dead
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete records: %v %+v", err, resp)
	}

	if left := scanAll(t, sub, dead); len(left) != 1 || left[0].id != "0-1" {
		t.Fatalf("after retention: %+v", left)
	}
	// The removal of 0-0 is now followed by its tombstone.
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: b.brokers, Topic: infkafka.RemovedTopic(dead), Partition: 0, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	var values [][]byte
	for range 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != "0-0" {
			t.Fatalf("removals topic has key %q", m.Key)
		}
		values = append(values, m.Value)
	}
	if values[0] == nil || values[1] != nil {
		t.Fatalf("removal then tombstone expected; values %q", values)
	}
}
