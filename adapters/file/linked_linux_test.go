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
