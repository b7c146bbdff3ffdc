package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/config"
)

// TestDurabilityReachesTheEmbeddedQueueAndSQLite opens the embedded default at each durability
// and checks what JetStream and SQLite actually run with, and the start-up line saying so.
func TestDurabilityReachesTheEmbeddedQueueAndSQLite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		setting    string // "" leaves the default
		syncAlways bool
		sqlite     string
		logged     string
	}{
		{"", false, sqlite.SynchronousNormal, config.DurabilityProcess},
		{config.DurabilityProcess, false, sqlite.SynchronousNormal, config.DurabilityProcess},
		{config.DurabilityFsync, true, sqlite.SynchronousFull, config.DurabilityFsync},
	} {
		t.Run(cmp.Or(tc.setting, "default"), func(t *testing.T) {
			t.Parallel()
			yaml := fmt.Sprintf("data_dir: %q\n", t.TempDir())
			if tc.setting != "" {
				yaml += "durability: " + tc.setting + "\n"
			}
			cfg, err := config.LoadBytes([]byte(yaml), "test", nil)
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			a, err := newApp(context.Background(), cfg, configSource{}, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := a.close(); err != nil {
					t.Error(err)
				}
			}()
			if a.queue == nil {
				t.Fatal("no embedded queue on the embedded default")
			}
			if got := a.queue.SyncAlways(); got != tc.syncAlways {
				t.Errorf("JetStream SyncAlways = %v, want %v", got, tc.syncAlways)
			}
			s, ok := a.store.(*sqlite.Store)
			if !ok {
				t.Fatalf("job store is %T, want *sqlite.Store", a.store)
			}
			if got := s.Synchronous(); got != tc.sqlite {
				t.Errorf("SQLite synchronous = %s, want %s", got, tc.sqlite)
			}
			// The result files (and the archive, written to the same store) are fsynced
			// before a result counts as stored at fsync, and left to the page cache at process.
			rs, ok := a.results.(*file.Store)
			if !ok {
				t.Fatalf("result store is %T, want *file.Store", a.results)
			}
			if got := rs.Syncs(); got != tc.syncAlways {
				t.Errorf("result store syncs = %v, want %v", got, tc.syncAlways)
			}
			var lines int
			for line := range strings.Lines(logs.String()) {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil || rec["durability"] == nil {
					continue
				}
				lines++
				if rec["durability"] != tc.logged || rec["level"] != "info" {
					t.Errorf("start-up line %s, want durability %q at info", line, tc.logged)
				}
			}
			if lines != 1 {
				t.Errorf("%d start-up lines name the durability, want 1:\n%s", lines, logs.String())
			}
		})
	}
}
