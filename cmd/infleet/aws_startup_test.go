package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
)

// TestAWSStartupNamesWhatIsMissing opens the app on SQS, DynamoDB, S3 and SNS resources that do
// not exist and checks that start-up fails naming each, with the fix.
func TestAWSStartupNamesWhatIsMissing(t *testing.T) {
	p := needAWSPeers(t)
	t.Parallel()
	sfx := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	base := fmt.Sprintf(`
transport: {kind: sqs, sqs: {queues: {high: nq-%[1]s-h, normal: nq-%[1]s-n, low: nq-%[1]s-l}, dead_letter_queue: nq-%[1]s-d, endpoint: %[2]q}}
store: {kind: dynamodb, dynamodb: {table: nt-%[1]s, endpoint: %[3]q}}
results: {kind: s3, s3: {bucket: nb-%[1]s, endpoint: %[2]q}}
notify: {sns: {topic_arn: "arn:aws:sns:us-east-1:000000000000:ns-%[1]s", endpoint: %[2]q}}
`, sfx, p.endpoint, p.dynamo)
	open := func(yaml string) error {
		cfg, err := config.LoadBytes([]byte(yaml), "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.DataDir = t.TempDir()
		a, err := newApp(context.Background(), cfg, configSource{}, zerolog.Nop())
		if err == nil {
			_ = a.close()
		}
		return err
	}
	want := func(err error, parts ...string) {
		t.Helper()
		for _, part := range parts {
			if err == nil || !strings.Contains(err.Error(), part) {
				t.Fatalf("start-up error %v, want it to mention %q", err, part)
			}
		}
	}
	want(open(base), `SQS queues "nq-`+sfx+`-h"`, `infleet init`)

	// Create what init creates, one kind after the other, and see the next one named.
	cfg, err := config.LoadBytes([]byte(base), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	clients := newAWSClients(cfg)
	if _, err := initSQS(ctx, clients); err != nil {
		t.Fatal(err)
	}
	want(open(base), `DynamoDB table "nt-`+sfx+`" does not exist`, `infleet init`)
	if _, err := initDynamoDB(ctx, clients); err != nil {
		t.Fatal(err)
	}
	want(open(base), `S3 bucket "nb-`+sfx+`" does not exist`, `infleet init`)
	if _, err := initS3(ctx, clients); err != nil {
		t.Fatal(err)
	}
	want(open(base), `ns-`+sfx, `infleet init`)
	if _, err := initSNS(ctx, clients); err != nil {
		t.Fatal(err)
	}
	if err := open(base); err != nil {
		t.Fatalf("with everything created: %v", err)
	}
}
