package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The working directory sits, with a random name, inside a new temporary directory marked as
// the top of a hierarchy (FS_TOPDIR_FL), so that ext4 spreads what is made in it; closing the
// harness removes both. With marking off, the parent carries no mark.
func TestWorkDirIsSpread(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	for _, mark := range []bool{true, false} {
		dir, spread, err := workDir(mark)
		if err != nil {
			t.Fatal(err)
		}
		top := filepath.Dir(dir)
		if filepath.Dir(top) != os.Getenv("TMPDIR") {
			t.Fatalf("workDir(%v) = %s, want it two levels below %s", mark, dir, os.Getenv("TMPDIR"))
		}
		flags, ferr := topFlags(t, top)
		switch {
		case mark && spread == nil && (ferr != nil || flags&fsTopDirFlag == 0):
			t.Errorf("workDir(true) reported no error, but %s is not marked (flags %#x, %v)", top, flags, ferr)
		case mark && spread != nil:
			if errors.Is(spread, unix.ENOTTY) || errors.Is(spread, unix.EOPNOTSUPP) {
				t.Logf("the file system under TMPDIR has no directory flags: %v", spread)
			} else {
				t.Errorf("workDir(true): %v", spread)
			}
		case !mark && (spread != nil || (ferr == nil && flags&fsTopDirFlag != 0)):
			t.Errorf("workDir(false) marked %s (flags %#x) or failed (%v)", top, flags, spread)
		}
		h := &harness{tmp: dir, http: newHTTPClient(), out: io.Discard}
		h.close()
		if _, err := os.Stat(top); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after close, %s: %v, want it removed", top, err)
		}
	}
}

// topFlags reads dir's inode flags (FS_IOC_GETFLAGS).
func topFlags(t *testing.T, dir string) (uint32, error) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
}
