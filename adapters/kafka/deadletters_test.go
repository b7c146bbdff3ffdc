package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

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
	sub1 := newSubscriber(t, subscriberConfig(b, "g_"+watermill.NewShortUUID()))
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

	sub2 := newSubscriber(t, subscriberConfig(b, "g_"+watermill.NewShortUUID()))
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
