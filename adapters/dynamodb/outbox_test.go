package dynamodb_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

// TestOutboxRacingTransitionsTwoProcesses is the suite's OutboxRacingTransitions with the
// dispatchers in two processes (a client each): the events live on the job item, so every
// claim and delete races the transitions that append to it. Every event must be delivered
// once, in order, and the job item must be left without outbox attributes (out of the index).
func TestOutboxRacingTransitionsTwoProcesses(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t, 0)
	other := reopen(t, cfg)
	storetest.OutboxRacingTransitions(t, s, s, other)
	item := rawItem(t, cfg, "job#job-1")
	for _, attr := range []string{"outbox", "outbox_pk", "outbox_due", "outbox_holder", "outbox_attempts"} {
		if _, ok := item[attr]; ok {
			t.Errorf("job item keeps %s after every event was deleted", attr)
		}
	}
}

func eventIDs(evs []pipeline.OutboxEvent) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID()
	}
	return ids
}

// A table made before the outbox existed gets an error that says how to add its index.
func TestEnsureTableNamesTheMissingOutboxIndex(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := tableName()
	def := dynamodb.TableDefinition(table)
	def.GlobalSecondaryIndexes = slices.DeleteFunc(def.GlobalSecondaryIndexes, func(i types.GlobalSecondaryIndex) bool {
		return aws.ToString(i.IndexName) == dynamodb.IndexByOutbox
	})
	if _, err := client.CreateTable(t.Context(), def); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
	})
	waiter := ddb.NewTableExistsWaiter(client, func(o *ddb.TableExistsWaiterOptions) { o.MinDelay = 100 * time.Millisecond })
	if err := waiter.Wait(t.Context(), &ddb.DescribeTableInput{TableName: aws.String(table)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	err := dynamodb.EnsureTable(t.Context(), client, table)
	if err == nil || !strings.Contains(err.Error(), "lacks the index by_outbox") || !strings.Contains(err.Error(), "update-table") {
		t.Fatalf("EnsureTable on a table without the outbox index = %v, want an error naming the index and the fix", err)
	}
	// A process on such a table starts, says so, and its claims name the fix.
	var logs bytes.Buffer
	s, err := dynamodb.Open(t.Context(), dynamodb.Config{Client: client, Table: table, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatalf("Open on a table without the outbox index: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if !strings.Contains(logs.String(), "lacks the outbox index") {
		t.Fatalf("Open logged %q, want an error about the missing outbox index", logs.String())
	}
	if _, err := s.ClaimEvents(t.Context(), "h", time.Minute, 10); err == nil || !strings.Contains(err.Error(), `run "infleet init"`) {
		t.Fatalf("ClaimEvents without the outbox index = %v, want an error saying to run infleet init", err)
	}
}
