package ops

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// windowsRead records the windows a StatsReader is asked for.
type windowsRead struct {
	pipeline.StatsReader
	mu   sync.Mutex
	from []time.Time
}

func (w *windowsRead) JobStats(ctx context.Context, from, to time.Time) (pipeline.JobStats, error) {
	w.mu.Lock()
	w.from = append(w.from, from)
	w.mu.Unlock()
	return w.StatsReader.JobStats(ctx, from, to)
}

func (w *windowsRead) reset() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.from
	w.from = nil
	return out
}

// TestStatsCacheReadsOnlyRecentMinutes checks on a real SQLite store that the cached figures
// equal a full read as time moves on and jobs finish, that a later call reads the store only
// from the settled edge, and that a change to a settled minute shows at the next full read.
func TestStatsCacheReadsOnlyRecentMinutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	now := time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second)
	from := now.Add(-30 * time.Minute).Truncate(time.Minute)
	n := 0
	job := func(created time.Time, status messages.Status, took time.Duration) string {
		t.Helper()
		n++
		id := fmt.Sprintf("job-%03d", n)
		rec := messages.JobRecord{JobID: id, Status: status, Task: "t", CreatedAt: created, UpdatedAt: created.Add(took)}
		if _, _, err := store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for i := range 40 {
		job(from.Add(time.Duration(i)*45*time.Second), []messages.Status{messages.StatusCompleted, messages.StatusFailed,
			messages.StatusCompleted, messages.StatusQueued}[i%4], time.Duration(i%7)*time.Second)
	}
	old := job(from.Add(3*time.Minute), messages.StatusCompleted, 2*time.Second)
	reader := &windowsRead{StatsReader: store}
	var c statsCache
	check := func(at time.Time) {
		t.Helper()
		got, err := c.jobStats(ctx, reader, from, at)
		if err != nil {
			t.Fatal(err)
		}
		want, err := store.JobStats(ctx, from, at)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("at %s the cached figures differ from a full read:\n got %+v\nwant %+v", at, got, want)
		}
	}

	check(now)
	if reads := reader.reset(); len(reads) != 2 || !reads[0].Equal(from) {
		t.Fatalf("first call read from %v, want the whole window then the recent minutes", reads)
	}
	// A minute later, with jobs finishing now: only the newly settled minute and the recent
	// ones are read.
	later := now.Add(time.Minute)
	job(later.Add(-20*time.Second), messages.StatusCompleted, 10*time.Second)
	job(later.Add(-90*time.Second), messages.StatusFailed, time.Second)
	check(later)
	for _, f := range reader.reset() {
		if f.Before(later.Add(-statsSettle - 2*time.Minute)) {
			t.Fatalf("the second call read from %s, long settled", f)
		}
	}
	// A settled minute changes (retention deletes a job): the cache shows it at its next full
	// read, within statsRefresh.
	if err := store.Delete(ctx, old); err != nil {
		t.Fatal(err)
	}
	at := later.Add(10 * time.Second)
	stale, err := c.jobStats(ctx, reader, from, at)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := store.JobStats(ctx, from, at)
	if err != nil {
		t.Fatal(err)
	}
	if stale.Buckets[3].Completed != fresh.Buckets[3].Completed+1 {
		t.Fatalf("minute 3 before statsRefresh: cached %+v, store %+v; want the deleted job still counted", stale.Buckets[3], fresh.Buckets[3])
	}
	check(now.Add(statsRefresh))
}
