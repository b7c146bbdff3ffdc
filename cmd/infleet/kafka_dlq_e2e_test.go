package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaCluster starts an in-process kfake cluster and returns its transport config line.
func kafkaCluster(t *testing.T) string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q]}}\n", cluster.ListenAddrs()[0])
}

// kafkaInit runs `infleet init` on the config body.
func kafkaInit(t *testing.T, body string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if rc := run([]string{"init", "--config", writeConfig(t, body), "--data-dir", t.TempDir()}, &out, &errOut); rc != 0 {
		t.Fatalf("init: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
}

// TestDeadLettersOnKafka runs the dead-letter round trip on the Kafka transport: retries go
// through the retry topics, dead letters to the dead-letter topic, and a second redrive (another
// process reading the removals) finds nothing.
func TestDeadLettersOnKafka(t *testing.T) {
	runsTheBinary(t)
	transport := kafkaCluster(t)
	kafkaInit(t, transport+"log: {level: warn}\n")
	checkDeadLettersRoundTrip(t, transport, func(logs string) {
		if strings.Contains(logs, "no retry topic") || strings.Contains(logs, "waits in memory") {
			t.Fatalf("retries did not go through the retry topics:\n%s", logs)
		}
	})
}
