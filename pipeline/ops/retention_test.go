package ops_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// reaperBundle is what a reaper test works with: the real stores the reaper deletes from.
type reaperBundle struct {
	store   *sqlite.Store
	calls   *countingExpirer
	results *file.Store
	reg     *prometheus.Registry
	now     time.Time
}

// countingExpirer passes every call to the store and records each call's limit and count.
type countingExpirer struct {
	pipeline.Expirer
	mu      sync.Mutex
	batches []int
}

func (c *countingExpirer) DeleteFinishedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	ids, err := c.Expirer.DeleteFinishedBefore(ctx, before, limit)
	c.mu.Lock()
	c.batches = append(c.batches, len(ids))
	c.mu.Unlock()
	return ids, err
}

func (c *countingExpirer) calls() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

const testRetention = time.Hour

// setupReaper returns a reaper over a new SQLite store and result directory with a one-hour
// retention, batches of 10 and a clock stopped at b.now.
func setupReaper(t *testing.T, mod func(*ops.ReaperConfig)) (*ops.Reaper, *reaperBundle) {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	results, err := file.New(file.Config{Dir: filepath.Join(dir, "results")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = results.Close() })
	b := &reaperBundle{store: store, calls: &countingExpirer{Expirer: store}, results: results,
		reg: prometheus.NewRegistry(), now: time.Now().UTC()}
	cfg := ops.ReaperConfig{
		Store: b.calls, Results: results, Retention: testRetention, Batch: 10, Pause: time.Millisecond,
		Now: func() time.Time { return b.now }, Metrics: telemetry.NewMetrics(b.reg),
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := ops.NewReaper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

// job creates job id at `at` and moves it to status, writing a result when it completed.
func (b *reaperBundle) job(t *testing.T, id string, status messages.Status, at time.Time) {
	t.Helper()
	ctx := t.Context()
	if _, _, err := b.store.Create(ctx, messages.JobRecord{JobID: id, Status: messages.StatusQueued, Task: "t",
		Priority: messages.PriorityNormal, CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if status == messages.StatusQueued {
		return
	}
	if status == messages.StatusCompleted {
		// The result first, as a worker stores it: a reaper running meanwhile must not find
		// the job COMPLETED, delete it, and leave a result written after it.
		if err := b.results.Put(ctx, pipeline.ResultKey(id), []byte(`{"job_id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.store.Transition(ctx, id, pipeline.Transition{To: status, At: at}); err != nil {
		t.Fatal(err)
	}
}

// left returns the ids of the jobs in the store and of the result objects, sorted.
func (b *reaperBundle) left(t *testing.T) (jobs, results []string) {
	t.Helper()
	for q := (pipeline.ListQuery{Limit: 1000}); ; {
		recs, next, err := b.store.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			jobs = append(jobs, r.JobID)
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	keys, err := b.results.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		results = append(results, strings.TrimSuffix(k, ".json"))
	}
	slices.Sort(jobs)
	return jobs, results
}

func (b *reaperBundle) counter(t *testing.T, name string) float64 {
	t.Helper()
	families, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestReaperDeletesExpiredJobsAndTheirResults(t *testing.T) {
	t.Parallel()
	r, b := setupReaper(t, nil)
	old := b.now.Add(-2 * testRetention)
	var expired []string
	for i := range 25 {
		id := fmt.Sprintf("old-%02d", i)
		status := []messages.Status{messages.StatusCompleted, messages.StatusFailed, messages.StatusCancelled}[i%3]
		b.job(t, id, status, old.Add(time.Duration(i)*time.Second))
		expired = append(expired, id)
	}
	b.job(t, "old-queued", messages.StatusQueued, old)
	b.job(t, "old-processing", messages.StatusProcessing, old)
	b.job(t, "recent", messages.StatusCompleted, b.now.Add(-testRetention/2))
	b.job(t, "just-kept", messages.StatusCompleted, b.now.Add(-testRetention))

	n, err := r.Sweep(t.Context())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if n != len(expired) {
		t.Fatalf("Sweep deleted %d jobs, want %d", n, len(expired))
	}
	if got, want := b.calls.calls(), []int{10, 10, 5}; !slices.Equal(got, want) {
		t.Fatalf("batches deleted %v, want %v: batches of 10 until one comes back short", got, want)
	}
	jobs, results := b.left(t)
	if want := []string{"just-kept", "old-processing", "old-queued", "recent"}; !slices.Equal(jobs, want) {
		t.Fatalf("jobs left %v, want %v", jobs, want)
	}
	if want := []string{"just-kept", "recent"}; !slices.Equal(results, want) {
		t.Fatalf("results left %v, want %v", results, want)
	}
	if _, err := b.store.Get(t.Context(), "old-00"); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("Get of an expired job: %v, want ErrNotFound", err)
	}
	if got := b.counter(t, "infleet_jobs_expired_total"); got != float64(len(expired)) {
		t.Errorf("infleet_jobs_expired_total = %v, want %d", got, len(expired))
	}
	if got := b.counter(t, "infleet_results_expired_total"); got != float64(len(expired)) {
		t.Errorf("infleet_results_expired_total = %v, want %d (a missing result counts as deleted)", got, len(expired))
	}

	if n, err := r.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("second Sweep: %d, %v; want 0 and no error", n, err)
	}
	// Time passes: the recent job expires too.
	b.now = b.now.Add(testRetention)
	if n, err := r.Sweep(t.Context()); err != nil || n != 2 {
		t.Fatalf("Sweep an hour later: %d, %v; want the 2 jobs that aged past the retention", n, err)
	}
}

// putGetOnly is a result store that cannot delete.
type putGetOnly struct{ store pipeline.BlobStore }

func (p putGetOnly) Put(ctx context.Context, key string, data []byte) error {
	return p.store.Put(ctx, key, data)
}

func (p putGetOnly) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return p.store.Get(ctx, key)
}

func TestReaperKeepsResultsItCannotDelete(t *testing.T) {
	t.Parallel()
	r, b := setupReaper(t, func(c *ops.ReaperConfig) { c.Results = putGetOnly{store: c.Results} })
	b.job(t, "old", messages.StatusCompleted, b.now.Add(-2*testRetention))
	if n, err := r.Sweep(t.Context()); err != nil || n != 1 {
		t.Fatalf("Sweep: %d, %v; want 1 and no error", n, err)
	}
	jobs, results := b.left(t)
	if len(jobs) != 0 || !slices.Equal(results, []string{"old"}) {
		t.Fatalf("left jobs %v and results %v; want no job and the result kept", jobs, results)
	}
	if got := b.counter(t, "infleet_results_expired_total"); got != 0 {
		t.Errorf("infleet_results_expired_total = %v, want 0", got)
	}
}

func TestReaperReturnsTheStoreError(t *testing.T) {
	t.Parallel()
	r, b := setupReaper(t, nil)
	b.job(t, "old", messages.StatusCompleted, b.now.Add(-2*testRetention))
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sweep(t.Context()); !errors.Is(err, sqlite.ErrClosed) {
		t.Fatalf("Sweep on a closed store: %v, want sqlite.ErrClosed", err)
	}
}

func TestReaperSweepWithAnEndedContextDeletesNothing(t *testing.T) {
	t.Parallel()
	r, b := setupReaper(t, nil)
	b.job(t, "old", messages.StatusCompleted, b.now.Add(-2*testRetention))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := r.Sweep(ctx); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Sweep with an ended context: %d, %v; want 0 and context.Canceled", n, err)
	}
	if jobs, results := b.left(t); len(jobs) != 1 || len(results) != 1 {
		t.Fatalf("left jobs %v and results %v, want both kept", jobs, results)
	}
}

func TestReaperRunSweepsUntilCancelled(t *testing.T) {
	t.Parallel()
	r, b := setupReaper(t, func(c *ops.ReaperConfig) {
		c.Interval = 10 * time.Millisecond
		c.Now = time.Now
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	// Jobs that expire while Run runs are deleted at a later sweep.
	for i := range 3 {
		b.job(t, fmt.Sprintf("old-%d", i), messages.StatusCompleted, time.Now().Add(-2*testRetention))
		pipelinetest.WaitFor(t, func() bool { jobs, results := b.left(t); return len(jobs) == 0 && len(results) == 0 })
	}
	if len(b.calls.calls()) < 3 {
		t.Fatalf("%d sweeps, want one per job at least", len(b.calls.calls()))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of its context ending")
	}
}

func TestNewReaperRefusesABadConfig(t *testing.T) {
	t.Parallel()
	_, err := ops.NewReaper(ops.ReaperConfig{Batch: -1})
	if err == nil {
		t.Fatal("NewReaper accepted a config without store or retention and with a negative batch")
	}
	for _, want := range []string{"Store", "retention", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
