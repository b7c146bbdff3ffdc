package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
)

// maxAppendHandles is how many files Append keeps open between calls: the archive appends to
// one object per hour partition, and a backlog of older jobs adds a few partitions at once.
const maxAppendHandles = 8

// appendHandle is an open file Append writes to. Writers hold mu shared; closing the file
// holds it exclusively, so a file is never closed under a write.
type appendHandle struct {
	mu sync.RWMutex
	f  *os.File // nil once closed
}

// close closes h's file once no write holds it.
func (h *appendHandle) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil {
		_ = h.f.Close()
		h.f = nil
	}
}

// appendHandles are the files Append keeps open, by name (at most maxAppendHandles).
type appendHandles struct {
	mu   sync.Mutex
	open map[string]*appendHandle
}

// Append adds data at the end of the object under key, creating it (and its directories) when
// missing, in one write to a file opened O_APPEND, so that appends from any number of
// goroutines or processes do not interleave. With Config.Sync the file, and the directory of
// a file it created, are fsynced before Append returns. A process killed during an append may
// leave its data partly written at the end of the object. It implements pipeline.BlobAppender.
//
// The files of the latest appends stay open between calls (a few, closed by Close and by a
// Delete of their key): an append costs one write instead of walking the path to open the
// file and closing it. An object deleted or replaced (Put) meanwhile, by this process or
// another, is noticed after the write (the open file has no name left), and the data is
// written again to the object now under the key, as an append that opened it afresh would
// have done.
func (s *Store) Append(ctx context.Context, key string, data []byte) error {
	name, err := checkKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file store: append %s: %w", key, err)
	}
	rewritten := false
	for {
		h, created, err := s.appendHandle(name)
		if err != nil {
			return fmt.Errorf("file store: append %s (check %s is writable): %w", key, s.dir, full(err))
		}
		h.mu.RLock()
		if h.f == nil { // closed between the lookup and the lock: look it up again
			h.mu.RUnlock()
			continue
		}
		_, err = h.f.Write(data)
		if err == nil && s.sync {
			if err = h.f.Sync(); err == nil {
				s.synced("file")
			}
		}
		gone := err == nil && unlinked(h.f)
		h.mu.RUnlock()
		if err != nil {
			s.dropAppendHandle(name, h)
			return fmt.Errorf("file store: append %s (check %s has space): %w", key, s.dir, full(err))
		}
		if gone && !rewritten {
			s.dropAppendHandle(name, h)
			rewritten = true
			continue
		}
		if created && s.sync {
			if err := s.syncDirGrouped(path.Dir(name)); err != nil {
				return fmt.Errorf("file store: append %s: sync directory: %w", key, full(err))
			}
		}
		return nil
	}
}

// appendHandle returns the open file of name for appending, opening (and creating, with its
// directories) it when this store has none open; created reports a file this call created.
func (s *Store) appendHandle(name string) (h *appendHandle, created bool, err error) {
	a := &s.appends
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.open[name]; h != nil {
		return h, false, nil
	}
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_APPEND, filePerm)
	if errors.Is(err, fs.ErrNotExist) {
		if parent := path.Dir(name); parent != "." {
			if err := s.root.MkdirAll(parent, dirPerm); err != nil {
				return nil, false, fmt.Errorf("create directory: %w", err)
			}
		}
		f, err = s.root.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, filePerm)
		created = true
	}
	if err != nil {
		return nil, false, err
	}
	if a.open == nil {
		a.open = make(map[string]*appendHandle, maxAppendHandles)
	}
	if len(a.open) >= maxAppendHandles {
		for other, oh := range a.open { // any one: the archive writes one partition at a time
			delete(a.open, other)
			go oh.close() // waits for its writes, not holding a.mu
			break
		}
	}
	h = &appendHandle{f: f}
	a.open[name] = h
	return h, created, nil
}

// dropAppendHandle closes h, the open file of name, and forgets it, unless another has taken
// its place.
func (s *Store) dropAppendHandle(name string, h *appendHandle) {
	a := &s.appends
	a.mu.Lock()
	if a.open[name] == h {
		delete(a.open, name)
	}
	a.mu.Unlock()
	h.close()
}

// closeAppendHandle closes the open file of name, if any: its object is being deleted or
// replaced.
func (s *Store) closeAppendHandle(name string) {
	a := &s.appends
	a.mu.Lock()
	h := a.open[name]
	delete(a.open, name)
	a.mu.Unlock()
	if h != nil {
		h.close()
	}
}

// closeAppendHandles closes every file Append keeps open.
func (s *Store) closeAppendHandles() {
	a := &s.appends
	a.mu.Lock()
	open := a.open
	a.open = nil
	a.mu.Unlock()
	for _, h := range open {
		h.close()
	}
}
