package file_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.BlobAppender = (*file.Store)(nil)

func TestAppendAddsWholeWritesInAnyOrder(t *testing.T) {
	t.Parallel()
	for _, synced := range []bool{false, true} {
		s, err := file.New(file.Config{Dir: t.TempDir(), Sync: synced})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		const n = 50
		for i := range n {
			wg.Go(func() {
				line := fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", 4000))
				if err := s.Append(context.Background(), "a/b/log.jsonl", []byte(line)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		rc, err := s.Get(context.Background(), "a/b/log.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) != n {
			t.Fatalf("sync %v: %d lines, want %d", synced, len(lines), n)
		}
		seen := map[string]bool{}
		for _, l := range lines {
			if len(l) != len("line 00 ")+4000 {
				t.Fatalf("sync %v: interleaved line %.20q… of %d bytes", synced, l, len(l))
			}
			seen[l[:7]] = true
		}
		if len(seen) != n {
			t.Fatalf("sync %v: %d distinct lines", synced, len(seen))
		}
		if err := s.Append(context.Background(), "../x", []byte("no")); err == nil {
			t.Fatal("append outside the store accepted")
		}
		s.Close()
	}
}

// TestAppendAfterTheObjectWasDeletedOrReplaced checks that an append whose file was deleted
// or replaced behind the store's back (another process, a Put) lands in the object now under
// the key, not in the file kept open from the append before.
func TestAppendAfterTheObjectWasDeletedOrReplaced(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(file.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const key = "archive/2026/12/06/01/a.jsonl"
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := s.Append(ctx, key, []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	// Deleted by another process (not through this store).
	if err := os.Remove(filepath.Join(dir, filepath.FromSlash(key))); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, key, []byte("2\n")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "2\n" {
		t.Fatalf("after a delete behind the store: %q, want %q", got, "2\n")
	}
	// Replaced by a Put.
	if err := s.Put(ctx, key, []byte("p\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, key, []byte("3\n")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "p\n3\n" {
		t.Fatalf("after a Put: %q, want %q", got, "p\n3\n")
	}
	// Deleted through the store.
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, key, []byte("4\n")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "4\n" {
		t.Fatalf("after a Delete: %q, want %q", got, "4\n")
	}
	// Many partitions: older handles are closed, appends to them still land.
	for i := range 20 {
		if err := s.Append(ctx, fmt.Sprintf("p/%02d.jsonl", i), []byte("x\n")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if err := s.Append(ctx, fmt.Sprintf("p/%02d.jsonl", i), []byte("y\n")); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "p", fmt.Sprintf("%02d.jsonl", i)))
		if err != nil || string(b) != "x\ny\n" {
			t.Fatalf("partition %d: %q, %v", i, b, err)
		}
	}
}
