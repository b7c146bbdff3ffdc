package pipeline

import (
	"context"
	"errors"
	"sync"
)

// ErrCancelledByUser is the cause of a running job's context when the job was cancelled.
var ErrCancelledByUser = errors.New("job cancelled")

// Hub tells watchers in this process that a job changed. It carries no data: a watcher re-reads
// the job from the store. It also carries the streamed text of streaming jobs to their
// followers in this process (StartStream, Follow). A nil *Hub is valid and announces nothing.
// Safe for concurrent use.
type Hub struct {
	mu     sync.Mutex
	subs   map[string]map[chan struct{}]struct{}
	runs   map[string]context.CancelCauseFunc
	deltas map[string]*deltas
}

// NewHub returns an empty Hub.
func NewHub() *Hub {
	return &Hub{subs: map[string]map[chan struct{}]struct{}{}, runs: map[string]context.CancelCauseFunc{}, deltas: map[string]*deltas{}}
}

// Running registers the cancel function of a job running in this process until done is called.
func (h *Hub) Running(jobID string, cancel context.CancelCauseFunc) (done func()) {
	if h == nil {
		return func() {}
	}
	h.mu.Lock()
	h.runs[jobID] = cancel
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.runs, jobID)
		h.mu.Unlock()
	}
}

// RunningJobs returns the ids of the jobs running in this process, in no particular order.
func (h *Hub) RunningJobs() []string {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.runs))
	for id := range h.runs {
		ids = append(ids, id)
	}
	return ids
}

// CancelRun stops the job if it runs in this process, with cause ErrCancelledByUser.
func (h *Hub) CancelRun(jobID string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	cancel := h.runs[jobID]
	h.mu.Unlock()
	if cancel != nil {
		cancel(ErrCancelledByUser)
	}
}

// Subscribe returns a channel that receives a signal after each Notify of jobID (signals
// coalesce while one is pending) and a stop function that must be called once.
func (h *Hub) Subscribe(jobID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	if h == nil {
		return ch, func() {}
	}
	h.mu.Lock()
	set := h.subs[jobID]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		h.subs[jobID] = set
	}
	set[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(set, ch)
		if len(set) == 0 && h.subs[jobID] != nil && len(h.subs[jobID]) == 0 {
			delete(h.subs, jobID)
		}
		h.mu.Unlock()
	}
}

// Notify signals every subscriber of jobID without blocking.
func (h *Hub) Notify(jobID string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	for ch := range h.subs[jobID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}
