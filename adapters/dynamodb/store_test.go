package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) pipeline.JobStore {
		s, _ := setup(t, 0)
		return s
	})
}

// TestConformanceWithRetention runs the suite with TTL on, so that expires_at never shows
// through.
func TestConformanceWithRetention(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) pipeline.JobStore {
		s, _ := setup(t, time.Hour)
		return s
	})
}

func job(id string, created time.Time) messages.JobRecord {
	return messages.JobRecord{
		JobID: id, Status: messages.StatusQueued, Task: "summarize", Priority: messages.PriorityNormal,
		CreatedAt: created, UpdatedAt: created, Tenant: "acme", IdempotencyKey: "key-" + id,
		Spec: []byte(`{"task":"summarize","input":{"text":"x"}}`),
	}
}

// rawItem returns the stored item with key pk, nil when there is none.
func rawItem(t *testing.T, cfg dynamodb.Config, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := cfg.Client.GetItem(t.Context(), &ddb.GetItemInput{
		TableName: aws.String(cfg.Table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
	})
	if err != nil {
		t.Fatalf("GetItem %s: %v", pk, err)
	}
	return out.Item
}

func expiresAt(item map[string]types.AttributeValue) (string, bool) {
	v, ok := item["expires_at"].(*types.AttributeValueMemberN)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func TestMissingTableSaysRunInit(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	_, err := dynamodb.Open(t.Context(), dynamodb.Config{Client: client, Table: "no-such-table"})
	want := `DynamoDB table "no-such-table" does not exist: run "infleet init" or create it (schema in deploy/aws)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open of a missing table = %v, want an error containing %q", err, want)
	}
}

func TestOpenValidates(t *testing.T) {
	t.Parallel()
	_, err := dynamodb.Open(t.Context(), dynamodb.Config{Retention: -time.Second})
	for _, want := range []string{"client", "store.dynamodb.table", "retention"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open of an empty config = %v, want an error naming %s", err, want)
		}
	}
}

func TestEnsureTableIsIdempotent(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := newTable(t, client)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = dynamodb.EnsureTable(t.Context(), client, table) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("EnsureTable on an existing table: %v", err)
	}
	s, err := dynamodb.Open(t.Context(), dynamodb.Config{Client: client, Table: table})
	if err != nil {
		t.Fatalf("Open after EnsureTable: %v", err)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	out, err := client.DescribeTable(t.Context(), &ddb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.Table.GlobalSecondaryIndexes); n != 3 {
		t.Fatalf("table has %d indexes, want 3", n)
	}
}

// A table of the same name but another schema is not taken for the job table.
func TestEnsureTableRefusesAnotherSchema(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := tableName()
	_, err := client.CreateTable(t.Context(), &ddb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
	})
	if err := dynamodb.EnsureTable(t.Context(), client, table); err == nil || !strings.Contains(err.Error(), "another schema") {
		t.Fatalf("EnsureTable over a foreign table = %v, want an error saying it has another schema", err)
	}
}

func TestTTLOnFinishedJobs(t *testing.T) {
	t.Parallel()
	const retention = 48 * time.Hour
	s, cfg := setup(t, retention)
	ctx := t.Context()
	rec := job("job-ttl", time.Now())
	if _, _, err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	idemPK := "idem#4:acme#" + rec.IdempotencyKey
	if _, ok := expiresAt(rawItem(t, cfg, "job#job-ttl")); ok {
		t.Fatal("a queued job has expires_at")
	}
	if _, err := s.Transition(ctx, rec.JobID, pipeline.Transition{To: messages.StatusProcessing}); err != nil {
		t.Fatal(err)
	}
	done := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if _, err := s.Transition(ctx, rec.JobID, pipeline.Transition{To: messages.StatusFailed, At: done}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(done.Add(retention).Unix())
	for _, pk := range []string{"job#job-ttl", idemPK} {
		if got, ok := expiresAt(rawItem(t, cfg, pk)); !ok || got != want {
			t.Fatalf("%s: expires_at = %q (set %v), want %s (finish time + retention)", pk, got, ok, want)
		}
	}
	// A replay brings the job back: it no longer expires, nor does its key.
	if _, err := s.Transition(ctx, rec.JobID, pipeline.Transition{From: []messages.Status{messages.StatusFailed}, To: messages.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	for _, pk := range []string{"job#job-ttl", idemPK} {
		if got, ok := expiresAt(rawItem(t, cfg, pk)); ok {
			t.Fatalf("%s: replayed job keeps expires_at %s", pk, got)
		}
	}
}

func TestNoTTLWithoutRetention(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t, 0)
	if _, _, err := s.Create(t.Context(), job("job-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(t.Context(), "job-1", pipeline.Transition{To: messages.StatusCompleted}); err != nil {
		t.Fatal(err)
	}
	if got, ok := expiresAt(rawItem(t, cfg, "job#job-1")); ok {
		t.Fatalf("expires_at = %s with retention 0, want none", got)
	}
}

// TestSharedAcrossStores checks that two stores (as two processes would) on one table see
// each other's writes and race on one job with one winner.
func TestSharedAcrossStores(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	b := reopen(t, cfg)
	rec := job("job-shared", time.Now())
	if _, created, err := a.Create(t.Context(), rec); err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	other := job("job-other", time.Now())
	other.IdempotencyKey = rec.IdempotencyKey
	got, created, err := b.Create(t.Context(), other)
	if err != nil || created || got.JobID != rec.JobID {
		t.Fatalf("Create with a taken key on the other store = %s, %v, %v; want job-shared, false, nil", got.JobID, created, err)
	}
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 16 {
		s := []*dynamodb.Store{a, b}[i%2]
		wg.Go(func() {
			<-start
			_, err := s.Transition(t.Context(), rec.JobID, pipeline.Transition{
				From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1,
			})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, pipeline.ErrConflict):
				conflicts.Add(1)
			default:
				t.Errorf("Transition: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != 15 {
		t.Fatalf("%d transitions out of QUEUED won and %d conflicted, want 1 and 15", wins.Load(), conflicts.Load())
	}
	if got, err := b.Get(t.Context(), rec.JobID); err != nil || got.Attempts != 1 || got.Status != messages.StatusProcessing {
		t.Fatalf("Get = %+v, %v; want PROCESSING with 1 attempt", got, err)
	}
}

// TestRacingTransitionsLoseNoUpdate runs transitions that all may apply (empty From) from many
// goroutines: each must land, so the attempt count is exact.
func TestRacingTransitionsLoseNoUpdate(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, 0)
	if _, _, err := s.Create(t.Context(), job("job-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	const n = 24
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.Transition(t.Context(), "job-1", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
				t.Errorf("Transition: %v", err)
			}
		})
	}
	wg.Wait()
	if got, err := s.Get(t.Context(), "job-1"); err != nil || got.Attempts != n {
		t.Fatalf("after %d racing transitions: attempts %d, err %v; want %d", n, got.Attempts, err, n)
	}
}

// A create that died between claiming its key and writing its job leaves a claim with no job:
// a fresh claim makes the next create of the key wait and then ask for a retry; a claim older
// than ClaimTimeout is taken over.
func TestAbandonedKeyClaim(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t, 0)
	claim := func(key string, at time.Time) {
		_, err := cfg.Client.PutItem(t.Context(), &ddb.PutItemInput{
			TableName: aws.String(cfg.Table),
			Item: map[string]types.AttributeValue{
				"pk":         &types.AttributeValueMemberS{Value: "idem#4:acme#" + key},
				"job_id":     &types.AttributeValueMemberS{Value: "job-dead"},
				"claimed_at": &types.AttributeValueMemberN{Value: fmt.Sprint(at.UnixMilli())},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	claim("old", time.Now().Add(-dynamodb.ClaimTimeout-time.Minute))
	rec := job("job-new", time.Now())
	rec.IdempotencyKey = "old"
	if got, created, err := s.Create(t.Context(), rec); err != nil || !created || got.JobID != "job-new" {
		t.Fatalf("Create over an abandoned claim = %s, %v, %v; want job-new created", got.JobID, created, err)
	}

	claim("fresh", time.Now())
	dynamodb.SetClaimWait(s, 100*time.Millisecond)
	rec = job("job-next", time.Now())
	rec.IdempotencyKey = "fresh"
	if _, _, err := s.Create(t.Context(), rec); !errors.Is(err, pipeline.ErrUnavailable) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("Create over a fresh claim with no job = %v, want an ErrUnavailable asking to retry", err)
	}
}

func TestListRejectsBadCursor(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, 0)
	for _, c := range []string{"!!", "bm8tY29sb24", "eDp5"} {
		if _, _, err := s.List(t.Context(), pipeline.ListQuery{Cursor: c}); !errors.Is(err, pipeline.ErrInvalidCursor) {
			t.Errorf("List with cursor %q = %v, want ErrInvalidCursor", c, err)
		}
	}
}

// TestListSameMillisecond pages through jobs created in one millisecond over every shard: the
// cursor's job id breaks the tie, so no job repeats or goes missing.
func TestListSameMillisecond(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, 0)
	at := time.Now()
	const n = 25
	for i := range n {
		if _, _, err := s.Create(t.Context(), job(fmt.Sprintf("job-%02d", i), at)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var cursor, prev string
	for page := 0; ; page++ {
		recs, next, err := s.List(t.Context(), pipeline.ListQuery{Limit: 7, Cursor: cursor, Tenant: "acme"})
		if err != nil {
			t.Fatalf("List page %d: %v", page, err)
		}
		for _, r := range recs {
			if seen[r.JobID] {
				t.Fatalf("job %s listed twice", r.JobID)
			}
			if prev != "" && r.JobID >= prev {
				t.Fatalf("job %s listed after %s, want descending ids", r.JobID, prev)
			}
			seen[r.JobID], prev = true, r.JobID
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != n {
		t.Fatalf("listed %d jobs, want %d", len(seen), n)
	}
}

func TestCheckFailsWhenTableGoes(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	table := tableName()
	if err := dynamodb.EnsureTable(t.Context(), client, table); err != nil {
		t.Fatal(err)
	}
	s, err := dynamodb.Open(t.Context(), dynamodb.Config{Client: client, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteTable(t.Context(), &ddb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
		t.Fatal(err)
	}
	// Deletion is asynchronous: Check fails once the table is DELETING or gone.
	deadline := time.Now().Add(10 * time.Second)
	for s.Check(t.Context()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Check still passes 10 s after the table was deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.Get(t.Context(), "x"); err == nil || !strings.Contains(err.Error(), "infleet init") {
		t.Logf("Get on a deleting table = %v", err)
	}
}

// A job over DynamoDB's item limit is refused with an error saying what to do instead.
func TestCreateTooLarge(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, 0)
	rec := job("job-big", time.Now())
	rec.Spec = []byte(`{"task":"summarize","input":{"text":"` + strings.Repeat("x", 420*1024) + `"}}`)
	if _, _, err := s.Create(t.Context(), rec); err == nil || !strings.Contains(err.Error(), "s3_uri") {
		t.Fatalf("Create of a 420 KB job = %v, want an error pointing to s3_uri", err)
	}
	rec.Spec = []byte(`{"task":"summarize","input":{"text":"` + strings.Repeat("x", 300*1024) + `"}}`)
	if _, created, err := s.Create(t.Context(), rec); err != nil || !created {
		t.Fatalf("Create of a 300 KB job = %v, %v; want created", created, err)
	}
	if got, err := s.Get(t.Context(), "job-big"); err != nil || len(got.Spec) != len(rec.Spec) {
		t.Fatalf("Get of the 300 KB job: %d bytes, %v", len(got.Spec), err)
	}
}

func TestBatchesConformance(t *testing.T) {
	t.Parallel()
	storetest.RunBatches(t, func(t *testing.T) (pipeline.BatchStore, pipeline.BatchStore) {
		a, cfg := setup(t, 0)
		return a, reopen(t, cfg)
	})
}
