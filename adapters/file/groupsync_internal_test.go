package file

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupSyncCoversEveryCaller has 64 goroutines each make a change and then ask for a sync,
// many times over, with a sync that takes a while: every caller must get back only after a
// sync that started after its change ended, and the syncs must be shared (far fewer than the
// callers).
func TestGroupSyncCoversEveryCaller(t *testing.T) {
	t.Parallel()
	var (
		g        groupSync
		changes  atomic.Int64 // changes made so far, each caller's numbered
		covered  atomic.Int64 // the most changes a finished sync saw made before it started
		syncs    atomic.Int64
		running  atomic.Int32
		parallel atomic.Bool
	)
	do := func() error {
		if running.Add(1) > 1 {
			parallel.Store(true)
		}
		defer running.Add(-1)
		seen := changes.Load()
		syncs.Add(1)
		time.Sleep(200 * time.Microsecond)
		for {
			c := covered.Load()
			if seen <= c || covered.CompareAndSwap(c, seen) {
				return nil
			}
		}
	}
	const callers, rounds = 64, 20
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range rounds {
				mine := changes.Add(1)
				if err := g.sync(do); err != nil {
					t.Errorf("sync: %v", err)
					return
				}
				if c := covered.Load(); c < mine {
					t.Errorf("change %d returned after syncs covering only the first %d", mine, c)
					return
				}
			}
		})
	}
	wg.Wait()
	if parallel.Load() {
		t.Error("two syncs ran at once")
	}
	if n := syncs.Load(); n > callers*rounds/4 {
		t.Errorf("%d syncs for %d callers: they were not shared", n, callers*rounds)
	}
	t.Logf("%d syncs for %d callers", syncs.Load(), callers*rounds)
}

// TestGroupSyncReportsAFailure: the callers a failed sync was to cover get its error, and a
// caller arriving after it gets the next sync's result.
func TestGroupSyncReportsAFailure(t *testing.T) {
	t.Parallel()
	var g groupSync
	boom := errors.New("disk gone")
	release := make(chan struct{})
	calls := 0
	do := func() error {
		calls++
		if calls == 1 {
			<-release
			return nil
		}
		if calls == 2 {
			return boom
		}
		return nil
	}
	first := make(chan error)
	go func() { first <- g.sync(do) }()
	for g.runningNow() == false {
		time.Sleep(time.Millisecond)
	}
	// These arrive while the first sync runs: they need the second, which fails.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = g.sync(do) })
	}
	for g.waiting() < len(errs) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the first sync's caller got %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("caller %d covered by the failed sync got %v", i, err)
		}
	}
	if err := g.sync(do); err != nil {
		t.Errorf("a caller after the failure got %v from a sync that succeeded", err)
	}
	if calls != 3 {
		t.Errorf("%d syncs, want 3 (the first, one shared by the 8 callers, the last)", calls)
	}
}

// TestPutsShareDirectorySyncs: concurrent Puts of new objects at durability fsync each sync
// their file, and share the syncs of their directory, which all happen.
func TestPutsShareDirectorySyncs(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Dir: t.TempDir(), Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var files, dirs atomic.Int64
	s.onSync = func(what string) {
		if what == "file" {
			files.Add(1)
		} else {
			dirs.Add(1)
		}
	}
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.Put(context.Background(), fmt.Sprintf("job-%03d.json", i), []byte(`{}`)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if files.Load() != n || dirs.Load() < 1 || dirs.Load() > n {
		t.Errorf("%d Puts made %d file and %d directory syncs, want %d and 1 to %d", n, files.Load(), dirs.Load(), n, n)
	}
	s.syncsMu.Lock()
	left := len(s.syncs)
	s.syncsMu.Unlock()
	if left != 0 {
		t.Errorf("%d directory syncs still kept after the Puts returned", left)
	}
	t.Logf("%d Puts: %d file syncs, %d directory syncs", n, files.Load(), dirs.Load())
}

// runningNow reports whether a sync runs (for tests).
func (g *groupSync) runningNow() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running
}

// waiting reports how many callers wait (for tests): those blocked on the condition.
func (g *groupSync) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiters
}
