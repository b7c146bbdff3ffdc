//go:build linux

package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPutLinksNewObjects checks that a new object takes the linked fast path on Linux (the
// test's file system supports O_TMPFILE) and that replacing it still works through a rename.
func TestPutLinksNewObjects(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, key := range []string{"a.json", "archive/2026/12/04/18.jsonl"} {
		if err := s.Put(ctx, key, []byte("first")); err != nil {
			t.Fatal(err)
		}
		if linkedUnsupported.Load() {
			t.Fatalf("put %s: the linked path was refused on this file system", key)
		}
		linked, err := s.putLinked(filepath.Dir(key), filepath.Base(key), []byte("again"))
		if err != nil || linked {
			t.Fatalf("put over the existing %s: linked %v, err %v; want the rename path", key, linked, err)
		}
		if err := s.Put(ctx, key, []byte("second")); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil || string(got) != "second" {
			t.Fatalf("%s holds %q (%v), want the replacement", key, got, err)
		}
		info, err := os.Stat(filepath.Join(dir, key))
		if err != nil || info.Mode().Perm() != filePerm&^umask(t) {
			t.Fatalf("%s: mode %v (%v), want %v", key, info.Mode().Perm(), err, filePerm)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, tempDir))
	if err != nil || len(entries) != 0 {
		t.Fatalf("temporary directory holds %d entries (%v), want none", len(entries), err)
	}
}

// umask reads the process's umask (without changing it for long).
func umask(t *testing.T) os.FileMode {
	t.Helper()
	f := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(f, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ info.Mode().Perm()
}

// TestPutLinksThroughProcWhenEmptyPathIsRefused checks the link kernels before 6.10 leave an
// unprivileged process: through /proc/self/fd.
func TestPutLinksThroughProcWhenEmptyPathIsRefused(t *testing.T) {
	emptyPathRefused.Store(true)
	defer emptyPathRefused.Store(false)
	dir := t.TempDir()
	s, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	linked, err := s.putLinked(".", "p.json", []byte("via proc"))
	if err != nil || !linked || linkedUnsupported.Load() {
		t.Fatalf("linked %v, err %v, unsupported %v; want linked through /proc", linked, err, linkedUnsupported.Load())
	}
	got, err := os.ReadFile(filepath.Join(dir, "p.json"))
	if err != nil || string(got) != "via proc" {
		t.Fatalf("holds %q (%v)", got, err)
	}
}

// TestPutAfterItsDirectoryWasRemoved checks that a directory Put keeps open and that is then
// removed (by an operator, or a test's cleanup) is created again, on the linked path and on
// the rename path.
func TestPutAfterItsDirectoryWasRemoved(t *testing.T) {
	for _, renamed := range []bool{false, true} {
		dir := t.TempDir()
		s, err := New(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := s.Put(ctx, "results/a.json", []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "results")); err != nil {
			t.Fatal(err)
		}
		if renamed {
			linkedUnsupported.Store(true)
		}
		err = s.Put(ctx, "results/b.json", []byte("b"))
		linkedUnsupported.Store(false)
		if err != nil {
			t.Fatalf("renamed %v: put after the directory was removed: %v", renamed, err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "results", "b.json")); err != nil || string(got) != "b" {
			t.Fatalf("renamed %v: holds %q (%v)", renamed, got, err)
		}
		_ = s.Close()
	}
}
