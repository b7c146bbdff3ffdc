package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// expirer returns s as a pipeline.Expirer, or skips t: the ability is optional (DynamoDB
// expires jobs with its own TTL).
func expirer(t *testing.T, s pipeline.JobStore) pipeline.Expirer {
	t.Helper()
	e, ok := s.(pipeline.Expirer)
	if !ok {
		t.Skipf("%T is not a pipeline.Expirer", s)
	}
	return e
}

// finish creates job id at base and moves it to status at base+after.
func finish(t *testing.T, s pipeline.JobStore, id string, status messages.Status, after time.Duration) {
	t.Helper()
	mustCreate(t, s, queued(id, base))
	mustTransition(t, s, id, pipeline.Transition{To: status, At: base.Add(after)})
}

func deleteFinished(t *testing.T, e pipeline.Expirer, before time.Time, limit int) []string {
	t.Helper()
	ids, err := e.DeleteFinishedBefore(t.Context(), before, limit)
	if err != nil {
		t.Fatalf("DeleteFinishedBefore(%s, %d): %v", before.Format(time.RFC3339Nano), limit, err)
	}
	return ids
}

func testDeleteFinishedBefore(t *testing.T, s pipeline.JobStore) {
	e := expirer(t, s)
	ctx := t.Context()
	// Finished before the cutoff, in the order of their last update.
	finish(t, s, "old-failed", messages.StatusFailed, 1*time.Second)
	finish(t, s, "old-completed", messages.StatusCompleted, 2*time.Second)
	finish(t, s, "old-cancelled", messages.StatusCancelled, 3*time.Second)
	keyed := queued("old-keyed", base)
	keyed.IdempotencyKey = "k-old"
	mustCreate(t, s, keyed)
	mustTransition(t, s, "old-keyed", pipeline.Transition{To: messages.StatusCompleted, At: base.Add(4 * time.Second)})
	// Kept: unfinished however old, finished at or after the cutoff.
	mustCreate(t, s, queued("old-queued", base))
	mustCreate(t, s, queued("old-processing", base))
	mustTransition(t, s, "old-processing", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1, At: base.Add(time.Second)})
	finish(t, s, "at-cutoff", messages.StatusCompleted, time.Hour)
	finish(t, s, "new-completed", messages.StatusCompleted, 2*time.Hour)
	cutoff := base.Add(time.Hour)

	if got := deleteFinished(t, e, cutoff, 2); !slices.Equal(got, []string{"old-failed", "old-completed"}) {
		t.Fatalf("first batch of 2 deleted %v, want the two oldest finished jobs [old-failed old-completed]", got)
	}
	got := deleteFinished(t, e, cutoff, 10)
	slices.Sort(got)
	if want := []string{"old-cancelled", "old-keyed"}; !slices.Equal(got, want) {
		t.Fatalf("second batch deleted %v, want %v", got, want)
	}
	if got := deleteFinished(t, e, cutoff, 10); len(got) != 0 {
		t.Fatalf("third batch deleted %v, want nothing left to delete", got)
	}
	for _, id := range []string{"old-failed", "old-completed", "old-cancelled", "old-keyed"} {
		if _, err := s.Get(ctx, id); !errors.Is(err, pipeline.ErrNotFound) {
			t.Fatalf("Get %s after its deletion: err = %v, want ErrNotFound", id, err)
		}
	}
	var kept []string
	for _, rec := range listAll(t, s, pipeline.ListQuery{}) {
		kept = append(kept, rec.JobID)
	}
	slices.Sort(kept)
	if want := []string{"at-cutoff", "new-completed", "old-processing", "old-queued"}; !slices.Equal(kept, want) {
		t.Fatalf("jobs left %v, want %v", kept, want)
	}

	// The deleted job's idempotency key went with it: the key creates a new job.
	again := queued("new-keyed", base.Add(3*time.Hour))
	again.IdempotencyKey = "k-old"
	requireRecord(t, normalized(again), mustCreate(t, s, again))
}

func testDeleteFinishedBeforeRacing(t *testing.T, s pipeline.JobStore) {
	e := expirer(t, s)
	const jobs, callers = 40, 8
	for i := range jobs {
		finish(t, s, fmt.Sprintf("job-%02d", i), messages.StatusCompleted, time.Duration(i)*time.Millisecond)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
		errs []error
	)
	for range callers {
		wg.Go(func() {
			for {
				ids, err := e.DeleteFinishedBefore(t.Context(), base.Add(time.Hour), 3)
				mu.Lock()
				for _, id := range ids {
					seen[id]++
				}
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil || len(ids) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("racing deletes failed: %v", errors.Join(errs...))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %s returned by %d racing deletes, want 1", id, n)
		}
	}
	if len(seen) != jobs {
		t.Fatalf("%d racing callers deleted %d distinct jobs, want all %d", callers, len(seen), jobs)
	}
	if left := listAll(t, s, pipeline.ListQuery{}); len(left) != 0 {
		t.Fatalf("%d jobs left after the racing deletes, want 0", len(left))
	}
}
