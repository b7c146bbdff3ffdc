package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// A finished run's data directory goes into the trash, not away: deleting its files would
// slow the creates of the runs after it. A missing one is ignored; with -keep it stays.
func TestDiscardMovesIntoTheTrash(t *testing.T) {
	tmp := t.TempDir()
	h := &harness{tmp: tmp, out: io.Discard}
	for _, name := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(tmp, name, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.discard(filepath.Join(tmp, "a"))
	h.discard(filepath.Join(tmp, "missing"))
	h.opts.keep = true
	h.discard(filepath.Join(tmp, "b"))
	if _, err := os.Stat(filepath.Join(tmp, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a is still in place: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, ".trash", "1-a", "data")); err != nil {
		t.Errorf("a is not in the trash: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "b", "data")); err != nil {
		t.Errorf("b, discarded with -keep, moved: %v", err)
	}
}

// Each child records what the flags ask, in files named after its run and role: profiles
// (remembered for the report) with -profile, an execution trace with -trace, nothing without.
func TestRecordingsNameRunAndRole(t *testing.T) {
	h := &harness{profiles: map[string][]string{}}
	if env := h.recordings("burndown-0ms", "worker"); len(env) != 0 {
		t.Errorf("without -profile and -trace: %q, want nothing", env)
	}
	h.opts.profileDir, h.opts.traceDir = "/p", "/t"
	got := h.recordings("burndown-0ms", "worker")
	want := []string{"INFLEET_CPUPROFILE=/p/burndown-0ms-worker.pprof", "INFLEET_MEMPROFILE=/p/burndown-0ms-worker.allocs.pprof",
		"INFLEET_TRACE=/t/burndown-0ms-worker.trace"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("recordings = %q, want %q", got, want)
	}
	if p := h.profiles["burndown-0ms"]; len(p) != 1 || p[0] != "/p/burndown-0ms-worker.pprof" {
		t.Errorf("profiles remembered: %q", p)
	}
}
