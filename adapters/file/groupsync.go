package file

import "sync"

// At durability fsync every new object's directory is synced after the object is linked into
// it, so that the name survives a power loss. A directory sync covers every entry made in the
// directory before it started, so the Puts that arrive together share one: a caller waits for
// a sync that started after it asked (the one running when it asks may have begun before its
// entry was made), and the first caller to find none running runs the next one for everyone
// waiting. Under load that is one sync per round instead of one per object: the file system
// writes the directory's block once for all of them.

// groupSync runs a sync (of one directory) for callers that share it. Its zero value is ready.
type groupSync struct {
	mu        sync.Mutex
	cond      sync.Cond // on mu; broadcast when a sync ends
	running   bool      // a sync runs now
	started   uint64    // syncs started so far; the running one is number started
	completed uint64    // the highest number of a sync that ended
	failed    uint64    // the highest number of a sync that failed, 0 for none
	err       error     // that failure
	waiters   int       // callers waiting on cond
	users     int       // callers holding it (Store.syncDirGrouped), under Store.syncsMu
}

// sync returns once a call of do that started after sync was called has ended: nil when it
// succeeded, and its error when it, or any later one, failed. One do runs at a time.
func (g *groupSync) sync(do func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	need := g.started + 1 // the next sync to start is the first that covers this caller
	for g.completed < need {
		if g.running {
			g.waiters++
			g.cond.Wait()
			g.waiters--
			continue
		}
		g.running = true
		g.started++
		n := g.started
		g.mu.Unlock()
		err := do()
		g.mu.Lock()
		g.running = false
		g.completed = n
		if err != nil {
			g.failed, g.err = n, err
		}
		g.cond.Broadcast()
	}
	if g.failed >= need {
		return g.err
	}
	return nil
}

// syncDirGrouped syncs directory dir (relative to the root) as syncDir does, sharing the
// sync with the other callers that ask for the same directory at the same time.
func (s *Store) syncDirGrouped(dir string) error {
	s.syncsMu.Lock()
	if s.syncs == nil {
		s.syncs = map[string]*groupSync{}
	}
	g := s.syncs[dir]
	if g == nil {
		g = &groupSync{}
		s.syncs[dir] = g
	}
	g.users++
	s.syncsMu.Unlock()

	err := g.sync(func() error { return s.syncDir(dir) })

	s.syncsMu.Lock()
	if g.users--; g.users == 0 {
		delete(s.syncs, dir)
	}
	s.syncsMu.Unlock()
	return err
}
