package file

import (
	"context"
	"sync"
	"testing"
)

// TestSyncIsHonoured counts the fsyncs of Put (a new object, then its replacement) and Append
// (a new object, then a second append): with Config.Sync each writes its file and, where it
// named a file, its directory to stable storage before it returns; without it, none.
func TestSyncIsHonoured(t *testing.T) {
	t.Parallel()
	for _, synced := range []bool{false, true} {
		s, err := New(Config{Dir: t.TempDir(), Sync: synced})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if s.Syncs() != synced {
			t.Fatalf("Syncs() = %v with Config.Sync %v", s.Syncs(), synced)
		}
		var mu sync.Mutex
		got := map[string]int{}
		s.onSync = func(what string) { mu.Lock(); got[what]++; mu.Unlock() }
		ctx := context.Background()
		step := func(name string, do func() error, files, dirs int) {
			t.Helper()
			mu.Lock()
			clear(got)
			mu.Unlock()
			if err := do(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !synced {
				files, dirs = 0, 0
			}
			if got["file"] != files || got["dir"] != dirs {
				t.Errorf("sync %v, %s: %d file and %d directory syncs, want %d and %d", synced, name, got["file"], got["dir"], files, dirs)
			}
		}
		step("put new", func() error { return s.Put(ctx, "job.json", []byte(`{"a":1}`)) }, 1, 1)
		step("put replacement", func() error { return s.Put(ctx, "job.json", []byte(`{"a":2}`)) }, 1, 1)
		step("put in a new directory", func() error { return s.Put(ctx, "x/y/job.json", []byte(`{}`)) }, 1, 1)
		step("append new", func() error { return s.Append(ctx, "archive/a.jsonl", []byte("1\n")) }, 1, 1)
		step("append again", func() error { return s.Append(ctx, "archive/a.jsonl", []byte("2\n")) }, 1, 0)
	}
}
