package main

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestDeadLettersOnSQS runs jobs on SQS and DynamoDB against a model that is down: they fail
// and wait in the dead-letter queue with their reasons and attempt history; after a restart
// with the model up they are redriven through the CLI and complete, and a second redrive finds
// nothing.
func TestDeadLettersOnSQS(t *testing.T) {
	p := needAWSPeers(t)
	runsTheBinary(t)
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	fleet := fmt.Sprintf(`
transport:
  kind: sqs
  sqs: {queues: {high: dlq-%[1]s-high, normal: dlq-%[1]s-normal, low: dlq-%[1]s-low}, dead_letter_queue: dlq-%[1]s-dead,
        visibility_timeout: 5s, endpoint: %[2]q}
store: {kind: dynamodb, dynamodb: {table: dlq-%[1]s-jobs, endpoint: %[3]q}}
`, sfx, p.endpoint, p.dynamo)
	var out, errOut bytes.Buffer
	if rc := run([]string{"init", "--config", writeConfig(t, fleet), "--data-dir", t.TempDir()}, &out, &errOut); rc != 0 {
		t.Fatalf("init: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	checkDeadLettersRoundTrip(t, fleet, nil)
}
