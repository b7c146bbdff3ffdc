package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/internal/disktest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

// setup opens a store on a new file under t.TempDir and closes it when t ends.
func setup(t testing.TB) (*sqlite.Store, sqlite.Config) {
	t.Helper()
	cfg := sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")}
	s, err := sqlite.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, cfg
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) pipeline.JobStore {
		s, _ := setup(t)
		return s
	})
}

func TestConformanceWithoutGroupCommit(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) pipeline.JobStore {
		s, err := sqlite.OpenWithoutGroupCommit(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
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

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := sqlite.Config{Path: filepath.Join(t.TempDir(), "nested", "dir", "jobs.db"), Synchronous: "full"}
	s, err := sqlite.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	base := time.Now()
	var want []messages.JobRecord
	for i := range 30 {
		rec, _, err := s.Create(ctx, job(fmt.Sprintf("job-%02d", i), base.Add(time.Duration(i)*time.Millisecond)))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if i%2 == 0 {
			rec, err = s.Transition(ctx, rec.JobID, pipeline.Transition{
				To: messages.StatusCompleted, Usage: &messages.Usage{InputTokens: i, OutputTokens: 1},
			})
			if err != nil {
				t.Fatalf("Transition: %v", err)
			}
		}
		want = append(want, rec)
	}
	if err := s.Delete(ctx, "job-29"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want = want[:29]
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s, err = sqlite.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	recs, next, err := s.List(ctx, pipeline.ListQuery{Limit: 100})
	if err != nil || next != "" {
		t.Fatalf("List after reopen: cursor %q err %v", next, err)
	}
	if len(recs) != len(want) {
		t.Fatalf("after reopen: %d jobs, want %d", len(recs), len(want))
	}
	for i, rec := range recs {
		w := want[len(want)-1-i]
		if rec.JobID != w.JobID || rec.Status != w.Status || !rec.UpdatedAt.Equal(w.UpdatedAt) ||
			(w.Usage != nil) != (rec.Usage != nil) || string(rec.Spec) != string(w.Spec) {
			t.Fatalf("after reopen: job %d is %+v, want %+v", i, rec, w)
		}
	}
	// The idempotency index survived too.
	again := job("job-x", base)
	again.IdempotencyKey = "key-job-03"
	stored, created, err := s.Create(ctx, again)
	if err != nil || created || stored.JobID != "job-03" {
		t.Fatalf("Create with a key used before reopen: got %s created %v err %v, want job-03, false, nil", stored.JobID, created, err)
	}
}

func TestOpenValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  sqlite.Config
		want []string
	}{
		{sqlite.Config{}, []string{"path is required"}},
		{sqlite.Config{Path: "a?b", Synchronous: "OFF", BusyTimeout: -time.Second}, []string{"'?'", "OFF", "negative"}},
	} {
		_, err := sqlite.Open(t.Context(), tc.cfg)
		if err == nil {
			t.Fatalf("Open(%+v): no error", tc.cfg)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%+v): error %q does not mention %q", tc.cfg, err, w)
			}
		}
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Pretend a later release migrated the file.
	db, err := sql.Open("sqlite", cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a file at schema 99: err = %v, want one about a newer schema", err)
	}
}

func TestOpenRejectsNonDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "not.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("this is not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path}); err == nil {
		_ = s.Close()
		t.Fatal("Open of a text file: no error")
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
	if err := s.Check(t.Context()); !errors.Is(err, sqlite.ErrClosed) {
		t.Fatalf("Check after Close: %v, want ErrClosed", err)
	}
	if _, _, err := s.Create(t.Context(), job("job-1", time.Now())); !errors.Is(err, sqlite.ErrClosed) {
		t.Fatalf("Create after Close: %v, want ErrClosed", err)
	}
}

// TestCloseWhileWriting closes the store under concurrent writers: every call either
// succeeds (and its job is on disk) or fails with ErrClosed; none hangs.
func TestCloseWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cfg := sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")}
	s, err := sqlite.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created []string
		errs    []error
	)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("job-%d-%d", g, i)
				_, _, err := s.Create(ctx, job(id, time.Now()))
				mu.Lock()
				if err == nil {
					created = append(created, id)
				} else if !errors.Is(err, sqlite.ErrClosed) {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(created) > 100 })
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("writes during Close: %v", errors.Join(errs...))
	}
	s, err = sqlite.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range created {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("job %s acknowledged before Close is gone after reopen: %v", id, err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.Create(ctx, job("job-1", time.Now())); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestInvalidCursor(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	for _, c := range []string{"!!!", "bm9jb2xvbg", "eDpqb2I"} { // bad base64, "nocolon", "x:job"
		if _, _, err := s.List(t.Context(), pipeline.ListQuery{Cursor: c}); err == nil || !strings.Contains(err.Error(), "cursor") {
			t.Errorf("List with cursor %q: err = %v, want an invalid cursor error", c, err)
		}
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFailingRequestSparesItsBatch makes one job's row unreadable and writes it together with
// other jobs: only the broken job's writes fail.
func TestFailingRequestSparesItsBatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, cfg := setup(t)
	if _, _, err := s.Create(ctx, job("job-bad", time.Now())); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", cfg.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE jobs SET usage = '{not json' WHERE job_id = 'job-bad'"); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() {
			if i%4 == 0 {
				_, errs[i] = s.Transition(ctx, "job-bad", pipeline.Transition{To: messages.StatusProcessing})
				return
			}
			_, _, errs[i] = s.Create(ctx, job(fmt.Sprintf("job-%02d", i), time.Now()))
		})
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case i%4 == 0 && (err == nil || !strings.Contains(err.Error(), "corrupt usage")):
			t.Errorf("Transition of the corrupt job: err = %v, want a corrupt usage error", err)
		case i%4 != 0 && err != nil:
			t.Errorf("Create job-%02d beside a failing request: %v", i, err)
		}
	}
	recs, _, err := s.List(ctx, pipeline.ListQuery{Limit: 100})
	if err == nil || !strings.Contains(err.Error(), "corrupt usage") {
		// The corrupt row is listed too; List reports it rather than skipping it.
		t.Fatalf("List over a corrupt row: %d jobs, err %v; want a corrupt usage error", len(recs), err)
	}
	if _, err := s.Get(ctx, "job-01"); err != nil {
		t.Fatalf("Get job-01: %v", err)
	}
}

// TestFullDisk fills the file system under the store (a tmpfs): writes fail with
// ErrStorageFull, reads go on, and once space is freed writes succeed again on the same Store.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	mnt := disktest.Mount(t, "2m")
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(mnt, "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	now := time.Now()
	big := func(id string) messages.JobRecord {
		rec := job(id, now)
		rec.Spec = []byte(`{"input":{"text":"` + strings.Repeat("w", 256<<10) + `"}}`)
		return rec
	}
	if _, _, err := s.Create(ctx, big("before")); err != nil {
		t.Fatal(err)
	}
	filler := disktest.Fill(t, mnt)
	// The log may hold a few writes in space it already has; it cannot hold many.
	var full error
	for i := 0; i < 20 && full == nil; i++ {
		_, _, full = s.Create(ctx, big(fmt.Sprintf("full-%d", i)))
	}
	if !errors.Is(full, pipeline.ErrStorageFull) {
		t.Fatalf("Create on a full disk: %v, want ErrStorageFull", full)
	}
	if _, err := s.Get(ctx, "before"); err != nil {
		t.Fatalf("Get on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, big("after")); err != nil {
		t.Fatalf("Create once space returned: %v", err)
	}
	if _, err := s.Transition(ctx, "before", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1}); err != nil {
		t.Fatalf("Transition once space returned: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check once space returned: %v", err)
	}
}

func TestSynchronousIsWhatSQLiteApplied(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ set, want string }{
		{"", sqlite.SynchronousNormal},
		{"normal", sqlite.SynchronousNormal},
		{"FULL", sqlite.SynchronousFull},
	} {
		s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db"), Synchronous: tc.set})
		if err != nil {
			t.Fatalf("Open(Synchronous %q): %v", tc.set, err)
		}
		if got := s.Synchronous(); got != tc.want {
			t.Errorf("Synchronous %q: store reports %q, want %q", tc.set, got, tc.want)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestBatchesConformance(t *testing.T) {
	t.Parallel()
	storetest.RunBatches(t, func(t *testing.T) (pipeline.BatchStore, pipeline.BatchStore) {
		a, cfg := setup(t)
		b, err := sqlite.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}

// TestCreateDoesNotQueueBehindTransitions queues thousands of transitions, as a busy worker
// pool does, and then creates a job: the create is answered long before the transitions are
// all written, because the writer takes creates first and lets them join a running batch.
func TestCreateDoesNotQueueBehindTransitions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := setup(t)
	const n = 3000
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, _, err := s.Create(ctx, job(fmt.Sprintf("job-%04d", i), time.Now())); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var done atomic.Int64
	for i := range n {
		wg.Go(func() {
			if _, err := s.Transition(ctx, fmt.Sprintf("job-%04d", i), pipeline.Transition{To: messages.StatusProcessing}); err != nil {
				t.Error(err)
			}
			done.Add(1)
		})
	}
	// Once a tenth are written, the rest are queued (in the writer's queue or blocked on it).
	for done.Load() < n/10 {
		runtime.Gosched()
	}
	if _, _, err := s.Create(ctx, job("job-new", time.Now())); err != nil {
		t.Fatal(err)
	}
	written := done.Load()
	wg.Wait()
	if written > n/2 {
		t.Errorf("the create returned after %d of %d queued transitions were written; want it ahead of most", written, n)
	}
	t.Logf("the create returned after %d of %d queued transitions", written, n)
}

// TestHalfWrittenRequestIsUndone has SQLite refuse the outbox row of one job's transition, in
// batches with other jobs' transitions and their events and with a batch creation that
// conflicts after writing its first row: the refused transition leaves neither its status nor
// its event, the conflicting creation leaves no row, and every other write lands with its
// event, since a status change and its outbox row are written together or not at all.
func TestHalfWrittenRequestIsUndone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, cfg := setup(t)
	const n = 60
	for i := range n {
		if _, _, err := s.Create(ctx, job(fmt.Sprintf("job-%02d", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBatch(ctx, pipeline.Batch{ID: "batch-1", Model: "m", JobIDs: []string{"job-01"}, Owner: "w"}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", cfg.Path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER refuse_event BEFORE INSERT ON outbox WHEN NEW.job_id = 'job-00'
		BEGIN SELECT RAISE(ABORT, 'event refused'); END`); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make([]error, n)
	var batchErr, laterErr error
	wg.Go(func() {
		batchErr = s.CreateBatch(ctx, pipeline.Batch{ID: "batch-2", Model: "m", JobIDs: []string{"job-02", "job-01"}, Owner: "w"})
	})
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Transition(ctx, fmt.Sprintf("job-%02d", i), pipeline.Transition{
				To: messages.StatusProcessing, From: []messages.Status{messages.StatusQueued}, EventID: fmt.Sprintf("ev-%02d", i)})
		})
	}
	wg.Wait()
	// Once more alone, so that no other request's failure rolls back the batch it runs in.
	laterErr = s.CreateBatch(ctx, pipeline.Batch{ID: "batch-3", Model: "m", JobIDs: []string{"job-03", "job-01"}, Owner: "w"})
	for id, err := range map[string]error{"batch-2": batchErr, "batch-3": laterErr} {
		if !errors.Is(err, pipeline.ErrConflict) {
			t.Errorf("CreateBatch %s of a job in another batch: err = %v, want ErrConflict", id, err)
		}
		if _, err := s.GetBatch(ctx, id); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("GetBatch %s, which conflicted: err = %v, want ErrNotFound (its first row undone)", id, err)
		}
	}
	for i, err := range errs {
		id := fmt.Sprintf("job-%02d", i)
		rec, gerr := s.Get(ctx, id)
		if gerr != nil {
			t.Fatal(gerr)
		}
		var events int
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM outbox WHERE job_id = ?", id).Scan(&events); err != nil {
			t.Fatal(err)
		}
		want, wantEvents := messages.StatusProcessing, 1
		if i == 0 {
			want, wantEvents = messages.StatusQueued, 0
			if err == nil || !strings.Contains(err.Error(), "event refused") {
				t.Errorf("Transition of %s: err = %v, want the refusal of its event", id, err)
			}
		} else if err != nil {
			t.Errorf("Transition of %s beside a refused one: %v", id, err)
		}
		if rec.Status != want || events != wantEvents {
			t.Errorf("%s is %s with %d outbox rows, want %s with %d", id, rec.Status, events, want, wantEvents)
		}
	}
}

func TestReadLatestReadsWhatGetReads(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	if _, err := s.ReadLatest(ctx, "nope"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("missing job: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Create(ctx, job("r1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, "r1", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1, Model: "m"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadLatest(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.Get(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || got.Status != messages.StatusProcessing || got.Attempts != 1 {
		t.Fatalf("ReadLatest %+v\nGet        %+v", got, want)
	}
}

// TestAnswersReachTheirOwnCaller runs creates and transitions from many goroutines, a third
// of them with a deadline so short that the caller gives up while the writer still holds the
// write: every answer a caller does get is its own job's. (The writer recycles the requests
// it has answered; one whose caller gave up is still the writer's and must not be reused.)
func TestAnswersReachTheirOwnCaller(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	var wg sync.WaitGroup
	var gaveUp atomic.Int64
	for g := range 32 {
		wg.Go(func() {
			for i := range 60 {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if (g+i)%3 == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%5)*20*time.Microsecond)
				}
				id := fmt.Sprintf("answer-%d-%d", g, i)
				now := time.Now()
				out, _, err := s.Create(ctx, messages.JobRecord{JobID: id, Status: messages.StatusQueued,
					Task: "t", CreatedAt: now, UpdatedAt: now})
				switch {
				case err != nil && ctx.Err() == nil:
					t.Errorf("create %s: %v", id, err)
				case err != nil:
					gaveUp.Add(1)
				case out.JobID != id:
					t.Errorf("create %s answered with job %q", id, out.JobID)
				}
				out, err = s.Transition(ctx, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1})
				switch {
				case err != nil && ctx.Err() == nil && !errors.Is(err, pipeline.ErrNotFound):
					t.Errorf("transition %s: %v", id, err)
				case err != nil:
					gaveUp.Add(1)
				case out.JobID != id || out.Status != messages.StatusProcessing:
					t.Errorf("transition %s answered with job %q in %s", id, out.JobID, out.Status)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if gaveUp.Load() == 0 {
		t.Fatal("no caller gave up waiting: the test did not exercise abandoned requests")
	}
	t.Logf("%d writes given up by their callers", gaveUp.Load())
}
