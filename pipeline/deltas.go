package pipeline

import (
	"context"
	"sync"
)

// DeltaFeed hands out the streamed text of the jobs that asked for streaming. Implementations
// are safe for concurrent use; the Hub is the in-process one.
type DeltaFeed interface {
	// Follow sends the job's streamed text from byte offset on, in order and in pieces as
	// they arrive (a slow reader gets fewer, larger pieces; the writer never waits for it). The
	// channel is closed when the attempt streaming it ends and its text was sent, or when ctx
	// ends. A job whose stream has not begun waits for it; one whose stream is no longer held
	// sends nothing: the stored result is the rest.
	Follow(ctx context.Context, jobID string, offset int) <-chan string
}

// deltas is the streamed text of one job in this process: everything written over its
// attempts here, which readers copy from at their own pace. The text is the answer itself,
// which the worker holds anyway until it stores the result, so it needs no bound of its own
// beyond the model's max tokens; no reader can hold up a writer, nor miss text by being slow.
type deltas struct {
	mu        sync.Mutex
	text      []byte
	changed   chan struct{} // closed and replaced at each write
	followers int
	// started is set when an attempt began writing, ended when the latest one stopped.
	started, ended bool
}

func newDeltas() *deltas { return &deltas{changed: make(chan struct{})} }

func (d *deltas) write(s string) {
	d.mu.Lock()
	d.text = append(d.text, s...)
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// since returns the text from off on, a channel closed at the next change, and whether the
// attempt writing it has ended.
func (d *deltas) since(off int) (string, <-chan struct{}, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 || off > len(d.text) {
		off = len(d.text)
	}
	return string(d.text[off:]), d.changed, d.started && d.ended
}

// idle reports whether no attempt writes to d now.
func (d *deltas) idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.started || d.ended
}

// setEnded marks whether an attempt writes to d, waking its followers.
func (d *deltas) setEnded(ended bool) {
	d.mu.Lock()
	d.started, d.ended = true, ended
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// StartStream begins the streamed answer of a job's attempt in this process: the returned
// Stream publishes to the job's followers and starts from the text an earlier attempt here
// streamed to them, if any, so that a retried call resumes from it. end must be called when
// the attempt ends. A nil Hub returns a Stream that publishes nowhere.
func (h *Hub) StartStream(jobID string) (s *Stream, end func()) {
	if h == nil {
		return NewStream(nil), func() {}
	}
	h.mu.Lock()
	d := h.deltas[jobID]
	if d == nil {
		d = newDeltas()
		h.deltas[jobID] = d
	}
	h.mu.Unlock()
	d.setEnded(false)
	d.mu.Lock()
	s = NewStream(d.write)
	s.text.Write(d.text)
	d.mu.Unlock()
	return s, func() {
		d.setEnded(true)
		h.mu.Lock()
		defer h.mu.Unlock()
		if d.followers == 0 && h.deltas[jobID] == d {
			delete(h.deltas, jobID)
		}
	}
}

// Follow implements DeltaFeed for the jobs streaming in this process. A follower that comes
// before the job's stream begins gets its text once it does.
func (h *Hub) Follow(ctx context.Context, jobID string, offset int) <-chan string {
	out := make(chan string, 1)
	if h == nil {
		go func() { <-ctx.Done(); close(out) }()
		return out
	}
	h.mu.Lock()
	d := h.deltas[jobID]
	if d == nil {
		d = newDeltas()
		h.deltas[jobID] = d
	}
	d.followers++
	h.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			d.followers--
			if d.followers == 0 && d.idle() && h.deltas[jobID] == d {
				delete(h.deltas, jobID)
			}
			h.mu.Unlock()
		}()
		for {
			text, changed, ended := d.since(offset)
			if text == "" && ended {
				return
			}
			if text != "" {
				select {
				case out <- text:
					offset += len(text)
				case <-ctx.Done():
					return
				}
				continue
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
