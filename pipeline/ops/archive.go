package ops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Archive defaults.
const (
	ArchivePrefix        = "archive/"
	defaultArchiveFlush  = time.Second
	defaultArchiveBatch  = 1000
	archivePartitionHour = "2006/01/02/15"
)

// ArchiveEntry is one accepted job message as the archive keeps it.
type ArchiveEntry struct {
	AcceptedAt time.Time         `json:"accepted_at"`
	JobID      string            `json:"job_id"`
	Task       string            `json:"task"`
	Priority   messages.Priority `json:"priority"`
	Tenant     string            `json:"tenant,omitempty"`
	Body       json.RawMessage   `json:"body"`
	Metadata   map[string]string `json:"metadata,omitempty"`
}

// ArchiveConfig wires an Archive. Store is required.
type ArchiveConfig struct {
	// Store keeps the archive objects, under ArchivePrefix.
	Store pipeline.BlobStore
	// FlushEvery is how often buffered entries are written (default 1s); MaxBatch flushes
	// sooner (default 1000).
	FlushEvery time.Duration
	MaxBatch   int
	// Retention is how long archived entries are kept (0: forever). Older hour partitions are
	// deleted at start and hourly, when the store can list and delete.
	Retention time.Duration
	Logger    zerolog.Logger
}

// Archive keeps every accepted job message as time-partitioned JSON lines
// (archive/YYYY/MM/DD/HH/<time>-<n>.jsonl) in the result store, for replay. Entries are
// buffered and written at least every FlushEvery; entries buffered when a process is killed are
// lost from the archive (the jobs themselves are not). Safe for concurrent use.
type Archive struct {
	cfg   ArchiveConfig
	mu    sync.Mutex
	buf   []ArchiveEntry
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	seq   atomic.Uint64
	close sync.Once
}

// NewArchive starts an Archive's flush loop; Close stops it after a last flush.
func NewArchive(cfg ArchiveConfig) (*Archive, error) {
	if cfg.Store == nil {
		return nil, errors.New("archive: no result store configured")
	}
	cfg.FlushEvery = cmpDuration(cfg.FlushEvery, defaultArchiveFlush)
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultArchiveBatch
	}
	a := &Archive{cfg: cfg, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a, nil
}

// Add buffers e for the next flush. A nil *Archive ignores it.
func (a *Archive) Add(e ArchiveEntry) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.buf = append(a.buf, e)
	full := len(a.buf) >= a.cfg.MaxBatch
	a.mu.Unlock()
	if full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

func (a *Archive) loop() {
	defer close(a.done)
	t := time.NewTicker(a.cfg.FlushEvery)
	defer t.Stop()
	a.prune(context.Background(), time.Now())
	lastPrune := time.Now()
	for {
		select {
		case now := <-t.C:
			if now.Sub(lastPrune) >= time.Hour {
				a.prune(context.Background(), now)
				lastPrune = now
			}
		case <-a.kick:
		case <-a.stop:
			a.Flush(context.Background())
			return
		}
		a.Flush(context.Background())
	}
}

// Flush writes the buffered entries now, one object per hour partition. Entries that cannot be
// written are kept for the next flush.
func (a *Archive) Flush(ctx context.Context) {
	a.mu.Lock()
	entries := a.buf
	a.buf = nil
	a.mu.Unlock()
	if len(entries) == 0 {
		return
	}
	parts := map[string]*bytes.Buffer{}
	for _, e := range entries {
		key := e.AcceptedAt.UTC().Format(archivePartitionHour)
		b := parts[key]
		if b == nil {
			b = &bytes.Buffer{}
			parts[key] = b
		}
		line, _ := json.Marshal(e)
		b.Write(line)
		b.WriteByte('\n')
	}
	now := time.Now().UTC().UnixNano()
	var failed []ArchiveEntry
	for part, b := range parts {
		key := fmt.Sprintf("%s%s/%d-%d.jsonl", ArchivePrefix, part, now, a.seq.Add(1))
		if err := a.cfg.Store.Put(ctx, key, b.Bytes()); err != nil {
			a.cfg.Logger.Warn().Err(err).Str("key", key).Msg("archive write failed; retrying at the next flush")
			for _, e := range entries {
				if e.AcceptedAt.UTC().Format(archivePartitionHour) == part {
					failed = append(failed, e)
				}
			}
		}
	}
	if len(failed) > 0 {
		a.mu.Lock()
		a.buf = append(failed, a.buf...)
		a.mu.Unlock()
	}
}

// prune deletes the archive objects of hour partitions that ended more than Retention before
// now, and reports how many it deleted.
func (a *Archive) prune(ctx context.Context, now time.Time) int {
	lister, okL := a.cfg.Store.(pipeline.BlobLister)
	deleter, okD := a.cfg.Store.(pipeline.BlobDeleter)
	if a.cfg.Retention <= 0 || !okL || !okD {
		return 0
	}
	keys, err := lister.List(ctx, ArchivePrefix)
	if err != nil {
		a.cfg.Logger.Warn().Err(err).Msg("archive retention: list failed; retrying in an hour")
		return 0
	}
	cutoff := now.Add(-a.cfg.Retention)
	deleted := 0
	for _, key := range keys {
		rest := key[len(ArchivePrefix):]
		if len(rest) < len(archivePartitionHour) {
			continue
		}
		h, err := time.Parse(archivePartitionHour, rest[:len(archivePartitionHour)])
		if err != nil || !h.Add(time.Hour).Before(cutoff) {
			continue
		}
		if err := deleter.Delete(ctx, key); err != nil {
			a.cfg.Logger.Warn().Err(err).Str("key", key).Msg("archive retention: delete failed")
			continue
		}
		deleted++
	}
	if deleted > 0 {
		a.cfg.Logger.Info().Int("objects", deleted).Dur("retention", a.cfg.Retention).Msg("archive retention: old partitions deleted")
	}
	return deleted
}

// Close flushes what is buffered and stops the flush loop. Safe to call twice; nil is a no-op.
func (a *Archive) Close() error {
	if a == nil {
		return nil
	}
	a.close.Do(func() { close(a.stop) })
	<-a.done
	return nil
}

// ScanArchive calls fn for every archived entry accepted in [from, to], partition by
// partition, until fn returns false. The store must be a pipeline.BlobLister.
func ScanArchive(ctx context.Context, store pipeline.BlobStore, from, to time.Time, fn func(ArchiveEntry) bool) error {
	lister, ok := store.(pipeline.BlobLister)
	if !ok {
		return errors.New("the result store cannot list objects, so the archive cannot be read")
	}
	from, to = from.UTC(), to.UTC()
	for day := from.Truncate(24 * time.Hour); !day.After(to); day = day.Add(24 * time.Hour) {
		keys, err := lister.List(ctx, ArchivePrefix+day.Format("2006/01/02")+"/")
		if err != nil {
			return fmt.Errorf("list archive of %s: %w", day.Format(time.DateOnly), err)
		}
		for _, key := range keys {
			if !partitionOverlaps(key, from, to) {
				continue
			}
			cont, err := scanObject(ctx, store, key, from, to, fn)
			if err != nil {
				return err
			}
			if !cont {
				return nil
			}
		}
	}
	return nil
}

// partitionOverlaps reads the hour from archive/YYYY/MM/DD/HH/... and reports whether that
// hour meets [from, to].
func partitionOverlaps(key string, from, to time.Time) bool {
	rest := key[len(ArchivePrefix):]
	if len(rest) < len(archivePartitionHour) {
		return false
	}
	h, err := time.Parse(archivePartitionHour, rest[:len(archivePartitionHour)])
	if err != nil {
		return false
	}
	return !h.Add(time.Hour).Before(from) && !h.After(to)
}

func scanObject(ctx context.Context, store pipeline.BlobStore, key string, from, to time.Time, fn func(ArchiveEntry) bool) (bool, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("read archive %s: %w", key, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var e ArchiveEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return false, fmt.Errorf("archive %s line %s: %w", key, strconv.Itoa(line), err)
		}
		if e.AcceptedAt.Before(from) || e.AcceptedAt.After(to) {
			continue
		}
		if !fn(e) {
			return false, nil
		}
	}
	return true, sc.Err()
}
