package file

import (
	"errors"
	"io/fs"
	"os"
	"sync"
)

// maxDirHandles bounds the directories Put keeps open: results go to one directory, so a few
// suffice; a Put into a directory beyond them opens and closes it as it goes.
const maxDirHandles = 16

// dirHandles are the directories Put keeps open, so that a new object costs the syscalls of
// its own file and not a walk to create and open its directory each time. A handle found
// stale (its directory removed) is retired, not closed, as a concurrent Put may still use it;
// retired handles are closed with the store.
type dirHandles struct {
	mu      sync.Mutex
	open    map[string]*os.File
	retired []*os.File
}

// openDir returns an open handle of directory parent (not ".", created when missing) and whether it
// is kept open: when not, the caller closes it.
func (s *Store) openDir(parent string) (*os.File, bool, error) {
	s.dirs.mu.Lock()
	d, ok := s.dirs.open[parent]
	s.dirs.mu.Unlock()
	if ok {
		return d, true, nil
	}
	if err := s.root.MkdirAll(parent, dirPerm); err != nil {
		return nil, false, err
	}
	d, err := s.root.Open(parent)
	if err != nil {
		return nil, false, err
	}
	s.dirs.mu.Lock()
	defer s.dirs.mu.Unlock()
	if kept, ok := s.dirs.open[parent]; ok {
		// Another Put opened it meanwhile.
		_ = d.Close()
		return kept, true, nil
	}
	if len(s.dirs.open) >= maxDirHandles {
		return d, false, nil
	}
	if s.dirs.open == nil {
		s.dirs.open = make(map[string]*os.File)
	}
	s.dirs.open[parent] = d
	return d, true, nil
}

// retireDir drops the kept handle d of parent after its directory was found removed, so that
// the next Put creates the directory again.
func (s *Store) retireDir(parent string, d *os.File) {
	s.dirs.mu.Lock()
	defer s.dirs.mu.Unlock()
	if s.dirs.open[parent] == d {
		delete(s.dirs.open, parent)
		s.dirs.retired = append(s.dirs.retired, d)
	}
}

// closeDirHandles closes every directory handle; the store is closing.
func (s *Store) closeDirHandles() {
	s.dirs.mu.Lock()
	defer s.dirs.mu.Unlock()
	for _, d := range s.dirs.open {
		_ = d.Close()
	}
	for _, d := range s.dirs.retired {
		_ = d.Close()
	}
	s.dirs.open, s.dirs.retired = nil, nil
}

// removedDir reports whether err says the directory written into no longer exists. (Linux
// refuses a new unnamed file in a removed directory with EPERM instead: unlinked tells.)
func removedDir(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
