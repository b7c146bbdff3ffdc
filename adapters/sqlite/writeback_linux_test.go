//go:build linux

package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWALWritebackStartsWriteOut writes 4 MiB to a file without syncing it and checks, with
// cachestat(2), that walWriteback.start sends its dirty pages to the disk within seconds: left
// alone, the kernel would keep them dirty for half a minute (dirty_expire_centisecs).
func TestWALWritebackStartsWriteOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db-wal")
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC {
		t.Skip("the test directory is in memory: nothing to write back")
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	dirty := func() uint64 {
		var st unix.Cachestat_t
		err := unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{Off: 0, Len: 0}, &st, 0)
		if errors.Is(err, unix.ENOSYS) {
			t.Skip("cachestat(2) needs Linux 6.5")
		}
		if err != nil {
			t.Fatal(err)
		}
		return st.Dirty
	}
	if dirty() == 0 {
		t.Skip("the kernel wrote the file back before the test looked")
	}
	w := walWriteback{path: path}
	defer w.close()
	w.start()
	for deadline := time.Now().Add(10 * time.Second); dirty() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d pages still dirty 10 s after the writeback was started", dirty())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWALWritebackWithoutAFile starts a writeback of a WAL that does not exist yet, then of
// the same path once it does: the first does nothing, the second opens it.
func TestWALWritebackWithoutAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.db-wal")
	w := walWriteback{path: path}
	defer w.close()
	w.start()
	if w.f != nil {
		t.Fatal("a missing WAL was opened")
	}
	if err := os.WriteFile(path, []byte("frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.start()
	if w.f == nil {
		t.Fatal("the WAL was not opened once it existed")
	}
}
