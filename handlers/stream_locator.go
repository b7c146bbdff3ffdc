package handlers

import (
	"context"
	"sync"
	"time"
)

// located is one read of where a job streams from.
type located struct {
	from  string
	ended bool
	err   error
}

// locator shares the reads of LocateFunc among the clients following one job: one watcher per
// job id reads the job's record at most once per poll, and only while a client waits for a
// read (not while every client relays the stream). Safe for concurrent use.
type locator struct {
	locate LocateFunc
	poll   time.Duration

	mu   sync.Mutex
	jobs map[string]*jobWatch
}

// jobWatch is the shared reads of one job's location. Its fields are guarded by locator.mu.
type jobWatch struct {
	clients int // following the job
	waiting int // of those, waiting for a read
	// gen counts the reads done, last is the latest; reading is true while one runs.
	gen     uint64
	last    located
	reading bool
	// changed is closed, and replaced, at each read; wake takes one signal when a client
	// starts waiting.
	changed chan struct{}
	wake    chan struct{}
	stop    context.CancelFunc
}

func newLocator(locate LocateFunc, poll time.Duration) *locator {
	return &locator{locate: locate, poll: poll, jobs: map[string]*jobWatch{}}
}

// join makes the caller a client of job id's watcher, starting it for the first client; the
// caller calls leave once it stops following the job.
func (l *locator) join(id string) *jobWatch {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.jobs[id]
	if w == nil {
		ctx, stop := context.WithCancel(context.Background())
		w = &jobWatch{changed: make(chan struct{}), wake: make(chan struct{}, 1), stop: stop}
		l.jobs[id] = w
		go l.watch(ctx, id, w)
	}
	w.clients++
	return w
}

// leave ends a client's following of job id; the last client stops the watcher.
func (l *locator) leave(id string, w *jobWatch) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.clients--; w.clients == 0 {
		w.stop()
		if l.jobs[id] == w {
			delete(l.jobs, id)
		}
	}
}

// next returns a read of the job's location: with fresh, one that started after the call,
// waiting for the watcher's next one; without, the latest read, or the first. A read that says
// the job ended is final: it is returned at once. ok is false when ctx ended first. A client
// whose relay just ended asks for a fresh read: it must not act on a read made while the
// stream still ran.
func (l *locator) next(ctx context.Context, w *jobWatch, fresh bool) (loc located, ok bool) {
	l.mu.Lock()
	need := max(w.gen, 1)
	if fresh {
		need = w.gen + 1
		if w.reading {
			need++
		}
	}
	for w.gen < need && !(w.gen > 0 && w.last.ended) {
		changed := w.changed
		w.waiting++
		select {
		case w.wake <- struct{}{}:
		default:
		}
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		}
		l.mu.Lock()
		w.waiting--
		if ctx.Err() != nil {
			l.mu.Unlock()
			return located{}, false
		}
	}
	loc = w.last
	l.mu.Unlock()
	return loc, true
}

// watch reads job id's location for w's clients until ctx ends (the last client left) or the
// job ended: at once, then at most once per poll, and only while a client waits.
func (l *locator) watch(ctx context.Context, id string, w *jobWatch) {
	t := time.NewTicker(l.poll)
	defer t.Stop()
	for {
		l.mu.Lock()
		w.reading = true
		l.mu.Unlock()
		from, ended, err := l.locate(ctx, id)
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		w.reading = false
		w.gen++
		w.last = located{from: from, ended: ended, err: err}
		close(w.changed)
		w.changed = make(chan struct{})
		l.mu.Unlock()
		if ended {
			return // the record says so from now on: clients that come get this read
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		for {
			l.mu.Lock()
			idle := w.waiting == 0
			l.mu.Unlock()
			if !idle {
				break
			}
			select {
			case <-w.wake:
			case <-ctx.Done():
				return
			}
		}
	}
}
