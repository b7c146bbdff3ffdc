package dynamodb_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// TestOutboxRacingTransitionsTwoProcesses is the suite's OutboxRacingTransitions with the
// dispatchers in two processes (a client each): the events live on the job item, so every
// claim and delete races the transitions that append to it. Every event must be delivered
// once, in order, and the job item must be left without outbox attributes (out of the index).
func TestOutboxRacingTransitionsTwoProcesses(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t, 0)
	other := reopen(t, cfg)
	ctx := t.Context()
	if _, _, err := s.Create(ctx, job("job-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	const events = 30
	var want []string
	for i := range events {
		want = append(want, fmt.Sprintf("ev-%03d", i))
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for _, id := range want {
			if _, err := s.Transition(ctx, "job-1", pipeline.Transition{To: messages.StatusCancelled, EventID: id}); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Transition(ctx, "job-1", pipeline.Transition{From: []messages.Status{messages.StatusCancelled}, To: messages.StatusQueued}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	deadline := time.Now().Add(30 * time.Second)
	for h, o := range []pipeline.Outbox{s, other} {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				evs, err := o.ClaimEvents(ctx, fmt.Sprint("holder-", h), time.Minute, 10)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, eventIDs(evs)...)
				n := len(got)
				mu.Unlock()
				if err := o.DeleteEvents(ctx, evs); err != nil {
					t.Error(err)
					return
				}
				if n >= events {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	<-writerDone
	wg.Wait()
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v,\nwant %v", got, want)
	}
	if evs, err := s.ClaimEvents(ctx, "late", time.Minute, 10); err != nil || len(evs) != 0 {
		t.Fatalf("ClaimEvents after every event was deleted = %v, %v; want none", eventIDs(evs), err)
	}
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
