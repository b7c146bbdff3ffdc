package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestDeadLettersOnSQS runs jobs on SQS and DynamoDB against a model that is down: they fail
// and wait in the dead-letter queue with their reasons and attempt history; after a restart
// with the model up they are redriven through the CLI and complete, and a second redrive finds
// nothing.
func TestDeadLettersOnSQS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := needAWSPeers(t)
	t.Parallel()
	bin := binary(t)
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	fleet := fmt.Sprintf(`
transport:
  kind: sqs
  sqs: {queues: {high: dlq-%[1]s-high, normal: dlq-%[1]s-normal, low: dlq-%[1]s-low}, dead_letter_queue: dlq-%[1]s-dead,
        visibility_timeout: 5s, endpoint: %[2]q}
store: {kind: dynamodb, dynamodb: {table: dlq-%[1]s-jobs, endpoint: %[3]q}}
log: {level: warn}
`, sfx, p.endpoint, p.dynamo)
	var out, errOut bytes.Buffer
	if rc := run([]string{"init", "--config", writeConfig(t, fleet), "--data-dir", t.TempDir()}, &out, &errOut); rc != 0 {
		t.Fatalf("init: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	addr := freeAddr(t)
	down := writeConfig(t, fleet+`
models: [{name: m, provider: sim, latency: 1ms, fail_rate: 1}]
routes: {default: m}
workers: {concurrency: 8, max_attempts: 2, retry_backoff: {initial: 100ms, max: 200ms}}
`)
	c := startChild(t, bin, t.TempDir(), addr, down)
	const n = 5
	var ids []string
	for i := range n {
		ids = append(ids, c.api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"dead on sqs %d"}}`, i)))
	}
	for _, id := range ids {
		rec := c.api.waitStatus(id, messages.StatusFailed)
		if rec.Error == nil || rec.Attempts != 2 || len(rec.Error.History) != 2 {
			t.Fatalf("job %s: %+v", id, rec)
		}
	}
	var dls []pipeline.DeadLetter
	c.api.eventually(20*time.Second, func() bool {
		_, _, data := c.api.do(http.MethodGet, "/v1/dead-letters?task=summarize", "", nil)
		var got struct {
			DeadLetters []pipeline.DeadLetter `json:"dead_letters"`
		}
		_ = json.Unmarshal(data, &got)
		dls = got.DeadLetters
		return len(dls) == n
	})
	for _, dl := range dls {
		if dl.Code != messages.ErrCodeModelError || dl.Attempts != 2 || dl.Reason == "" || dl.DeadAt.IsZero() {
			t.Fatalf("dead letter %+v", dl)
		}
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()

	up := writeConfig(t, fleet+`
models: [{name: m, provider: sim, latency: 1ms}]
routes: {default: m}
`)
	c2 := startChild(t, bin, t.TempDir(), freeAddr(t), up)
	out.Reset()
	if rc := run([]string{"dlq", "list", "--server", c2.api.base}, &out, &errOut); rc != 0 || strings.Count(out.String(), "\n") != n {
		t.Fatalf("dlq list: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	out.Reset()
	if rc := run([]string{"dlq", "show", "--server", c2.api.base, ids[0]}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), `"history"`) {
		t.Fatalf("dlq show (want the attempt history): rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	out.Reset()
	if rc := run([]string{"dlq", "redrive", "--all", "--server", c2.api.base}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), fmt.Sprintf("redriven %d", n)) {
		t.Fatalf("dlq redrive: rc %d\n%s%s\nserver log:\n%s", rc, out.String(), errOut.String(), c2.logs.String())
	}
	for _, id := range ids {
		if rec := c2.api.waitStatus(id, messages.StatusCompleted); rec.Attempts != 1 {
			t.Fatalf("job %s: %d attempts after a redrive with attempts reset", id, rec.Attempts)
		}
	}
	out.Reset()
	if rc := run([]string{"dlq", "redrive", "--all", "--server", c2.api.base}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), "matched 0") {
		t.Fatalf("second redrive: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
}
