package ops_test

import (
	"context"
	"encoding/json"
	"strings"
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

// One flush whose entries span hours writes each to its own hour's partition, in UTC, however
// the entries' times are zoned and in whatever order the hours come.
func TestArchiveFlushSplitsAcrossHourPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := file.New(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ops.NewArchive(ops.ArchiveConfig{Store: store, Background: true, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	india := time.FixedZone("IST", 5*3600+1800) // a half-hour offset: the local hour is not the UTC one
	at := map[string]time.Time{
		"a": base.Add(59*time.Minute + 59*time.Second),
		"b": base.Add(time.Hour).In(india),
		"c": base.Add(30 * time.Minute).In(india),
		"d": base.Add(time.Hour + 10*time.Minute),
		"e": base.Add(10 * time.Minute),
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		a.Add(ops.ArchiveEntry{AcceptedAt: at[id], JobID: id, Task: "t", Priority: messages.PriorityNormal,
			Body: json.RawMessage(`{"task":"t"}`)})
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	keys, err := store.List(ctx, ops.ArchivePrefix)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{ops.ArchivePrefix + base.Format("2006/01/02/15") + "/": true,
		ops.ArchivePrefix + base.Add(time.Hour).Format("2006/01/02/15") + "/": true}
	if len(keys) != 2 {
		t.Fatalf("archive objects %v, want one in each of two hours", keys)
	}
	for _, k := range keys {
		if !want[k[:len(ops.ArchivePrefix)+len("2006/01/02/15/")]] {
			t.Errorf("archive object %s is in no expected hour (%v)", k, want)
		}
	}
	for _, hour := range []time.Time{base, base.Add(time.Hour)} {
		var got []string
		err := ops.ScanArchive(ctx, store, hour, hour.Add(time.Hour-time.Nanosecond), func(e ops.ArchiveEntry) bool {
			got = append(got, e.JobID)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		wantIDs := map[time.Time]string{base: "a,c,e", base.Add(time.Hour): "b,d"}[hour]
		if s := strings.Join(got, ","); s != wantIDs {
			t.Errorf("hour %s holds %s, want %s", hour.Format(time.RFC3339), s, wantIDs)
		}
	}
}
