package sqlite_test

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

// gathering opens a store whose writer holds grouped writes up to wait for min requests, with
// n queued jobs job-00 … in it.
func gathering(t *testing.T, wait time.Duration, min, n int) *sqlite.Store {
	t.Helper()
	s, err := sqlite.OpenGathering(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "jobs.db")}, wait, min)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := range n {
		if _, _, err := s.Create(t.Context(), job(fmt.Sprintf("job-%02d", i), time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// completion is a worker's COMPLETED write: unreturned and grouped.
func completion() pipeline.Transition {
	return pipeline.Transition{To: messages.StatusCompleted, AttemptsDelta: 1, ResultURL: "file://r.json",
		Unreturned: true, Grouped: true}
}

// TestGroupedWritesShareACommit hands the writer grouped completions one by one, 5 ms apart:
// a writer that commits what it has would commit each alone; this one holds them until the
// gather size is reached and commits them together, well before its wait runs out.
func TestGroupedWritesShareACommit(t *testing.T) {
	t.Parallel()
	const n = 8
	s := gathering(t, 10*time.Second, n, n)
	before := sqlite.Commits(s)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.Transition(t.Context(), fmt.Sprintf("job-%02d", i), completion()); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if got := sqlite.Commits(s) - before; got != 1 {
		t.Errorf("%d grouped writes took %d commits; want 1", n, got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the writes returned after %s: the wait should end once %d are held", d, n)
	}
	for i := range n {
		rec, err := s.Get(t.Context(), fmt.Sprintf("job-%02d", i))
		if err != nil || rec.Status != messages.StatusCompleted {
			t.Errorf("job-%02d: %s, %v; want COMPLETED", i, rec.Status, err)
		}
	}
}

// TestGatherWaitEndsAtItsTime: a lone grouped write is held for the wait, no longer, and then
// committed.
func TestGatherWaitEndsAtItsTime(t *testing.T) {
	t.Parallel()
	s := gathering(t, 200*time.Millisecond, 100, 1)
	start := time.Now()
	if _, err := s.Transition(t.Context(), "job-00", completion()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("a lone grouped write returned after %s; want about the 200ms wait", d)
	}
	if rec, err := s.Get(t.Context(), "job-00"); err != nil || rec.Status != messages.StatusCompleted {
		t.Errorf("job-00: %s, %v; want COMPLETED", rec.Status, err)
	}
}

// TestOtherWritesEndTheGatherWait: while grouped writes are held, a create (an accept) or a
// write that is not grouped (a claim) is not held with them: it ends the wait and commits at
// once, and the held writes with it.
func TestOtherWritesEndTheGatherWait(t *testing.T) {
	t.Parallel()
	for name, write := range map[string]func(context.Context, *sqlite.Store) error{
		"create": func(ctx context.Context, s *sqlite.Store) error {
			_, _, err := s.Create(ctx, job("job-new", time.Now()))
			return err
		},
		"claim": func(ctx context.Context, s *sqlite.Store) error {
			_, err := s.Transition(ctx, "job-01", pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := gathering(t, 20*time.Second, 100, 2)
			held := make(chan error, 1)
			go func() {
				_, err := s.Transition(t.Context(), "job-00", completion())
				held <- err
			}()
			time.Sleep(50 * time.Millisecond) // the writer holds the completion now
			start := time.Now()
			if err := write(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the %s waited %s behind held grouped writes", name, d)
			}
			select {
			case err := <-held:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the held completion did not commit with the %s", name)
			}
		})
	}
}

// TestCloseEndsTheGatherWait: Close commits the grouped writes the writer holds, at once.
func TestCloseEndsTheGatherWait(t *testing.T) {
	t.Parallel()
	s := gathering(t, 20*time.Second, 100, 1)
	held := make(chan error, 1)
	go func() {
		_, err := s.Transition(context.Background(), "job-00", completion())
		held <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Close took %s behind a held grouped write", d)
	}
	if err := <-held; err != nil {
		t.Errorf("the held completion: %v; want it committed before Close returned", err)
	}
}
