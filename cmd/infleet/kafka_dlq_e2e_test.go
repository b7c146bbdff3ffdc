package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
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

// TestDeadLettersOnKafka runs jobs on the Kafka transport against a model that is down: they
// are retried through the retry topics, fail and land on the dead-letter topic, are listed
// with their reasons; after a restart with the model up they are redriven through the CLI and
// complete, and a second redrive (another process reading the removals) finds nothing.
func TestDeadLettersOnKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := binary(t)
	transport := kafkaCluster(t)
	kafkaInit(t, transport+"log: {level: warn}\n")
	dataDir := t.TempDir()
	addr := freeAddr(t)
	down := writeConfig(t, transport+`
models: [{name: m, provider: sim, latency: 1ms, fail_rate: 1}]
routes: {default: m}
workers: {concurrency: 8, max_attempts: 2, retry_backoff: {initial: 100ms, max: 200ms}}
log: {level: warn}
`)
	c := startChild(t, bin, dataDir, addr, down)
	const n = 5
	var ids []string
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"dead on kafka %d"}}`, i)))
	}
	for _, id := range ids {
		rec := c.api.waitStatus(id, messages.StatusFailed)
		if rec.Error == nil || rec.Attempts != 2 {
			t.Fatalf("job %s: %+v", id, rec)
		}
	}
	var dls []pipeline.DeadLetter
	c.api.eventually(10*time.Second, func() bool {
		_, _, data := c.api.do(http.MethodGet, "/v1/dead-letters?task=summarize", "", nil)
		var out struct {
			DeadLetters []pipeline.DeadLetter `json:"dead_letters"`
		}
		_ = json.Unmarshal(data, &out)
		dls = out.DeadLetters
		return len(dls) == n
	})
	for _, dl := range dls {
		if dl.Code != messages.ErrCodeModelError || dl.Attempts != 2 || dl.Reason == "" || dl.DeadAt.IsZero() {
			t.Fatalf("dead letter %+v", dl)
		}
	}

	// The model recovers: restart with a healthy one (the old process leaves the group on
	// SIGTERM) and redrive everything from the CLI.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	if logs := c.logs.String(); strings.Contains(logs, "no retry topic") || strings.Contains(logs, "waits in memory") {
		t.Fatalf("retries did not go through the retry topics:\n%s", logs)
	}
	up := writeConfig(t, transport+`
models: [{name: m, provider: sim, latency: 1ms}]
routes: {default: m}
log: {level: warn}
`)
	c2 := startChild(t, bin, dataDir, addr, up)
	var out, errOut bytes.Buffer
	if rc := run([]string{"dlq", "list", "--server", c2.api.base}, &out, &errOut); rc != 0 || strings.Count(out.String(), "\n") != n {
		t.Fatalf("dlq list: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	out.Reset()
	if rc := run([]string{"dlq", "redrive", "--all", "--server", c2.api.base}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), fmt.Sprintf("redriven %d", n)) {
		t.Fatalf("dlq redrive: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	for _, id := range ids {
		if rec := c2.api.waitStatus(id, messages.StatusCompleted); rec.Attempts != 1 {
			t.Fatalf("job %s: %d attempts after a redrive with attempts reset", id, rec.Attempts)
		}
	}
	out.Reset()
	if rc := run([]string{"dlq", "list", "--server", c2.api.base}, &out, &errOut); rc != 0 || out.Len() != 0 {
		t.Fatalf("dlq list after the redrive: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	out.Reset()
	if rc := run([]string{"dlq", "redrive", "--all", "--server", c2.api.base}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), "matched 0") {
		t.Fatalf("second redrive: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
}
