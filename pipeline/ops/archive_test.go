package ops_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/ops"
)

func TestArchiveFlushScanAndRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := file.New(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := now.Add(-50 * time.Hour)
	oldKey := ops.ArchivePrefix + old.Format("2006/01/02/15") + "/1-1.jsonl"
	if err := store.Put(ctx, oldKey, []byte(`{"job_id":"old"}`+"\n")); err != nil {
		t.Fatal(err)
	}
	a, err := ops.NewArchive(ops.ArchiveConfig{Store: store, Retention: 24 * time.Hour, Background: true, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		a.Add(ops.ArchiveEntry{AcceptedAt: now.Add(time.Duration(i) * time.Millisecond), JobID: id, Task: "t",
			Priority: messages.PriorityNormal, Body: json.RawMessage(`{"task":"t"}`)})
	}
	if err := a.Close(); err != nil { // flushes
		t.Fatal(err)
	}
	var got []string
	err = ops.ScanArchive(ctx, store, now.Add(-time.Hour), now.Add(time.Hour), func(e ops.ArchiveEntry) bool {
		got = append(got, e.JobID)
		return true
	})
	if err != nil || len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Fatalf("scan: %v, %v", got, err)
	}
	keys, err := store.List(ctx, ops.ArchivePrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k == oldKey {
			t.Fatalf("a partition older than the retention was kept: %v", keys)
		}
	}
	if len(keys) != 1 {
		t.Fatalf("archive objects %v, want the one flush", keys)
	}
}
