package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

// dsnEnv names the variable holding the test server's DSN; .ci/peers/postgres.sh start
// prints one.
const dsnEnv = "INFLEET_TEST_POSTGRES_DSN"

var schemaSeq atomic.Int64

// testDSN returns the test server's DSN, or skips tb when none is set.
func testDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		tb.Skipf("%s is unset: start a server with `.ci/peers/postgres.sh start` and export its DSN (make test does)", dsnEnv)
	}
	return dsn
}

// newSchema returns a schema name no other test uses and drops the schema when tb ends.
func newSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	schema := fmt.Sprintf("t%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, schemaSeq.Add(1))
	tb.Cleanup(func() {
		s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, MaxConns: 1})
		if err != nil {
			tb.Errorf("open to drop schema %s: %v", schema, err)
			return
		}
		defer s.Close()
		if err := postgres.DropSchema(context.Background(), s, schema); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// setup opens a store on a new, migrated schema of the test server and closes it and drops
// the schema when tb ends.
func setup(tb testing.TB) (*postgres.Store, postgres.Config) {
	tb.Helper()
	dsn := testDSN(tb)
	cfg := postgres.Config{DSN: dsn, MaxConns: 4, Schema: newSchema(tb, dsn)}
	s, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	if _, err := s.Migrate(context.Background()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return s, cfg
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) pipeline.JobStore {
		s, _ := setup(t)
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

func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	t.Parallel()
	dsn := testDSN(t)
	cfg := postgres.Config{DSN: dsn, MaxConns: 2, Schema: newSchema(t, dsn)}
	const procs = 6
	stores := make([]*postgres.Store, procs)
	for i := range stores {
		s, err := postgres.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	versions := make([]int, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { versions[i], errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i := range stores {
		if errs[i] != nil {
			t.Fatalf("Migrate %d: %v", i, errs[i])
		}
		if versions[i] != versions[0] || versions[i] < 1 {
			t.Fatalf("versions = %v, want all equal and at least 1", versions)
		}
	}
	if n, err := postgres.MigrationRows(t.Context(), stores[0]); err != nil || n != versions[0] {
		t.Fatalf("schema_migrations holds %d rows (err %v), want %d: a migration ran twice or not at all", n, err, versions[0])
	}
	// Again, with data in place: nothing changes.
	if _, _, err := stores[0].Create(t.Context(), job("job-1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if v, err := stores[1].Migrate(t.Context()); err != nil || v != versions[0] {
		t.Fatalf("second Migrate = %d, %v; want %d, nil", v, err, versions[0])
	}
	if _, err := stores[2].Get(t.Context(), "job-1"); err != nil {
		t.Fatalf("Get after second Migrate: %v", err)
	}
}

func TestUnmigratedSchemaSaysRunInit(t *testing.T) {
	t.Parallel()
	dsn := testDSN(t)
	s, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, MaxConns: 1, Schema: newSchema(t, dsn)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for name, err := range map[string]error{
		"Check": s.Check(t.Context()),
		"Get":   func() error { _, err := s.Get(t.Context(), "x"); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "infleet init") {
			t.Errorf("%s on an unmigrated schema = %v, want an error saying to run infleet init", name, err)
		}
	}
}

func TestCheckAndClose(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Check(t.Context()); err == nil {
		t.Fatal("Check after Close = nil, want an error")
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]postgres.Config{
		"no dsn":       {},
		"bad schema":   {DSN: "postgres://x@127.0.0.1:1/db", Schema: "Robert'); DROP"},
		"negative max": {DSN: "postgres://x@127.0.0.1:1/db", MaxConns: -1},
	} {
		if _, err := postgres.Open(t.Context(), cfg); err == nil {
			t.Errorf("%s: Open = nil error", name)
		}
	}
	// A server that is not there: the error names the address and the fix, not the password.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := postgres.Open(ctx, postgres.Config{DSN: "postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "store.postgres.dsn") {
		t.Fatalf("Open of a missing server = %v; want an error naming store.postgres.dsn without the password", err)
	}
}

// TestSharedAcrossStores checks that two stores (as two processes would) on one schema see
// each other's writes and race on one job with one winner.
func TestSharedAcrossStores(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t)
	b, err := postgres.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
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
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.Transition(t.Context(), rec.JobID, pipeline.Transition{
				From: []messages.Status{messages.StatusQueued}, To: messages.StatusProcessing, AttemptsDelta: 1,
			})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, pipeline.ErrConflict):
				t.Errorf("Transition: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d transitions out of QUEUED won, want 1", wins.Load())
	}
	if got, err := b.Get(t.Context(), rec.JobID); err != nil || got.Attempts != 1 || got.Status != messages.StatusProcessing {
		t.Fatalf("Get = %+v, %v; want PROCESSING with 1 attempt", got, err)
	}
}

func TestListRejectsBadCursor(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	for _, c := range []string{"!!", "bm8tY29sb24", "eDp5"} { // not base64, "no-colon", "x:y"
		if _, _, err := s.List(t.Context(), pipeline.ListQuery{Cursor: c}); err == nil || !strings.Contains(err.Error(), "cursor") {
			t.Errorf("List with cursor %q = %v, want an invalid-cursor error", c, err)
		}
	}
}

// TestListSameMillisecond pages through jobs created in one millisecond: the cursor's job id
// breaks the tie, so no job repeats or goes missing.
func TestListSameMillisecond(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	at := time.Now()
	const n = 25
	for i := range n {
		if _, _, err := s.Create(t.Context(), job(fmt.Sprintf("job-%02d", i), at)); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var cursor string
	for page := 0; ; page++ {
		recs, next, err := s.List(t.Context(), pipeline.ListQuery{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatalf("List page %d: %v", page, err)
		}
		for _, r := range recs {
			if seen[r.JobID] {
				t.Fatalf("job %s listed twice", r.JobID)
			}
			seen[r.JobID] = true
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

func TestBatchesConformance(t *testing.T) {
	t.Parallel()
	storetest.RunBatches(t, func(t *testing.T) (pipeline.BatchStore, pipeline.BatchStore) {
		a, cfg := setup(t)
		b, err := postgres.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}
