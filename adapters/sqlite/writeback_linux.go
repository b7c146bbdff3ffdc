//go:build linux

package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// walWriteback starts the kernel writing the WAL's dirty pages to disk without waiting for
// them (sync_file_range with SYNC_FILE_RANGE_WRITE), so that the fsync of the next checkpoint
// finds little left to write (see checkpointLoop). It holds its own read-only descriptor of
// the WAL file, opened on first use; a WAL that cannot be opened makes start do nothing until
// it can. Used by the checkpointer goroutine only.
type walWriteback struct {
	path string
	f    *os.File
}

// start asks the kernel to begin writing back every dirty page of the WAL and returns at once.
// Failures are ignored: the checkpoint's fsync writes whatever this did not.
func (w *walWriteback) start() {
	if w.f == nil {
		f, err := os.Open(w.path)
		if err != nil {
			return
		}
		w.f = f
	}
	_ = unix.SyncFileRange(int(w.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// close lets go of the descriptor.
func (w *walWriteback) close() {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
}
