//go:build !linux

package sqlite

// walWriteback does nothing where sync_file_range does not exist: the checkpoint's fsync
// writes the whole WAL.
type walWriteback struct{ path string }

func (w *walWriteback) start() {}
func (w *walWriteback) close() {}
