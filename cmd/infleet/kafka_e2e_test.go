package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/infleet/infleet/messages"
)

// TestServeOnKafka runs `infleet init` and serve on the Kafka transport against kfake, an
// in-process Kafka speaking the real protocol, completes jobs of every priority and finds one
// job.completed event per job on notify.kafka.topic.
func TestServeOnKafka(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	transport := fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\nnotify: {kafka: {topic: infleet.events}}\n", cluster.ListenAddrs()[0])
	cfgPath := filepath.Join(t.TempDir(), "init.yaml")
	if err := os.WriteFile(cfgPath, []byte(transport+"log: {level: warn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if rc := run([]string{"init", "--config", cfgPath, "--data-dir", t.TempDir()}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), "transport kafka: infleet.high, infleet.normal, infleet.low, infleet.dead ready") {
		t.Fatalf("init: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	h := startServe(t, e2eConfig+transport)
	var ids []string
	for i, p := range []string{"high", "normal", "low", "high", "normal", "low"} {
		ids = append(ids, h.submit(fmt.Sprintf(`{"task":"summarize","priority":%q,"input":{"text":"kafka job %d"}}`, p, i)))
	}
	for _, id := range ids {
		if rec := h.waitStatus(id, messages.StatusCompleted); rec.Attempts != 1 {
			t.Fatalf("job %s: %+v", id, rec)
		}
	}

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cluster.ListenAddrs(), GroupID: "events", Topic: "infleet.events",
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	seen := map[string]int{}
	for range ids {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("events read so far %v: %v", seen, err)
		}
		var ev messages.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil || ev.Type != "job.completed" || string(m.Key) != ev.JobID {
			t.Fatalf("event key %q value %s", m.Key, m.Value)
		}
		seen[ev.JobID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("job %s has %d completion events (all: %v)", id, seen[id], seen)
		}
	}
}
