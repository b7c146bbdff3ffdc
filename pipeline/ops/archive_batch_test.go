package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/file"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
)

// failingStore fails its Puts while fail is set and counts them.
type failingStore struct {
	pipeline.BlobStore
	fail atomic.Bool
	puts atomic.Int64
}

func (s *failingStore) Put(ctx context.Context, key string, data []byte) error {
	s.puts.Add(1)
	if s.fail.Load() {
		return errors.New("disk unplugged")
	}
	return s.BlobStore.Put(ctx, key, data)
}

func setupArchive(t *testing.T, cfg ops.ArchiveConfig) (*ops.Archive, *failingStore, *file.Store) {
	t.Helper()
	fs, err := file.New(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	store := &failingStore{BlobStore: fs}
	cfg.Store = store
	a, err := ops.NewArchive(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, store, fs
}

func entry(id string, at time.Time) ops.ArchiveEntry {
	return ops.ArchiveEntry{AcceptedAt: at, JobID: id, Task: "t", Priority: messages.PriorityNormal, Body: json.RawMessage(`{"task":"t"}`)}
}

func scanIDs(t *testing.T, store pipeline.BlobStore, at time.Time) map[string]int {
	t.Helper()
	got := map[string]int{}
	err := ops.ScanArchive(context.Background(), store, at.Add(-time.Hour), at.Add(time.Hour), func(e ops.ArchiveEntry) bool {
		got[e.JobID]++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestArchiveWaitReturnsOnceTheBatchIsWritten(t *testing.T) {
	t.Parallel()
	a, store, fs := setupArchive(t, ops.ArchiveConfig{Window: 20 * time.Millisecond, MaxBatch: 8})
	now := time.Now().UTC()
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("j%02d", i)
			if err := a.Add(entry(id, now)).Wait(context.Background()); err != nil {
				errs <- err
				return
			}
			// Its Wait returned: the entry is readable from the store now, without a Close.
			if scanIDs(t, fs, now)[id] != 1 {
				errs <- fmt.Errorf("%s waited for but not in the archive", id)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := scanIDs(t, fs, now)
	if len(got) != n {
		t.Fatalf("%d jobs in the archive, want %d", len(got), n)
	}
	// Batched: fewer writes than entries.
	if p := store.puts.Load(); p >= n {
		t.Fatalf("%d writes for %d entries", p, n)
	}
}

func TestArchiveFailedWriteFailsItsWaits(t *testing.T) {
	t.Parallel()
	a, store, fs := setupArchive(t, ops.ArchiveConfig{Window: time.Millisecond})
	now := time.Now().UTC()
	store.fail.Store(true)
	err := a.Add(entry("lost", now)).Wait(context.Background())
	if err == nil {
		t.Fatal("Wait of an entry whose write failed returned nil")
	}
	store.fail.Store(false)
	// The redelivered message is archived again; the failed entry is not written behind its back.
	if err := a.Add(entry("lost", now)).Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := scanIDs(t, fs, now); got["lost"] != 1 {
		t.Fatalf("archive %v, want the job once", got)
	}
	if err := a.Add(entry("late", now)).Wait(context.Background()); !errors.Is(err, ops.ErrArchiveClosed) {
		t.Fatalf("Wait after Close = %v, want ErrArchiveClosed", err)
	}
}

func TestArchiveBackgroundKeepsAFailedBatchForTheNextWrite(t *testing.T) {
	t.Parallel()
	a, store, fs := setupArchive(t, ops.ArchiveConfig{Background: true, Window: time.Millisecond})
	now := time.Now().UTC()
	store.fail.Store(true)
	if err := a.Add(entry("kept", now)).Wait(context.Background()); err != nil {
		t.Fatalf("background Wait = %v, want nil at once", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for store.puts.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	store.fail.Store(false)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := scanIDs(t, fs, now); got["kept"] != 1 {
		t.Fatalf("archive %v, want the entry written at the next write", got)
	}
}

func TestArchiveAppendsBatchesToOneObjectPerHour(t *testing.T) {
	t.Parallel()
	fs, err := file.New(file.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ops.NewArchive(ops.ArchiveConfig{Store: fs, Window: time.Millisecond, MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	now := time.Now().UTC()
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if err := a.Add(entry(fmt.Sprintf("j%02d", i), now)).Wait(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, err := fs.List(context.Background(), ops.ArchivePrefix)
	if err != nil || len(keys) != 1 {
		t.Fatalf("archive objects %v (%v), want one for the hour", keys, err)
	}
	// An append cut off by a crash leaves a line without its newline: it is not read.
	if err := fs.Append(context.Background(), keys[0], []byte(`{"job_id":"torn","accepted_at":"`)); err != nil {
		t.Fatal(err)
	}
	if got := scanIDs(t, fs, now); len(got) != 30 || got["torn"] != 0 {
		t.Fatalf("archive %v, want the 30 whole entries", got)
	}
}
