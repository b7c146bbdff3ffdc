package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Archive defaults.
const (
	ArchivePrefix            = "archive/"
	defaultArchiveWindow     = 2 * time.Millisecond
	defaultArchiveBackground = time.Second
	defaultArchiveBatch      = 500
	archivePartitionHour     = "2006/01/02/15"
	// archiveWriters is how many batches are written at once.
	archiveWriters = 4
)

// ErrArchiveClosed is returned by ArchiveWrite.Wait for an entry added after the Archive closed:
// it was not written, so its message must not be acknowledged (it is delivered again).
var ErrArchiveClosed = errors.New("archive closed: the job's message was not archived and goes back to the queue")

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

// archiveLineOverhead is about what an archive line holds besides its body: the time, ids,
// task, priority, tenant and metadata.
const archiveLineOverhead = 320

// appendArchiveLine appends e to b as one JSON line, the same bytes as json.Marshal(e) and a
// newline, without re-validating its body: the body is the job's spec as the job store keeps
// it, JSON already, and is copied as it is unless it spans lines (then it is compacted, and
// an error returned, b unchanged, when it is not JSON). Validating every body again cost the
// archive as much as the rest of its line; the rest is written by hand, as encoding/json's
// reflection over the entry and its metadata map was a tenth of a worker's allocations.
func appendArchiveLine(b *bytes.Buffer, e ArchiveEntry) error {
	if y := e.AcceptedAt.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("archive entry of job %s: accepted_at %v is outside years 0 to 9999", e.JobID, e.AcceptedAt)
	}
	start := b.Len()
	line := b.AvailableBuffer()
	line = append(line, `{"accepted_at":"`...)
	line = e.AcceptedAt.AppendFormat(line, time.RFC3339Nano)
	line = append(line, `","job_id":`...)
	line = messages.AppendJSONString(line, e.JobID)
	line = append(line, `,"task":`...)
	line = messages.AppendJSONString(line, e.Task)
	line = append(line, `,"priority":`...)
	line = messages.AppendJSONString(line, string(e.Priority))
	if e.Tenant != "" {
		line = append(line, `,"tenant":`...)
		line = messages.AppendJSONString(line, e.Tenant)
	}
	line = append(line, `,"body":`...)
	b.Write(line)
	switch {
	case len(e.Body) == 0:
		b.WriteString("null")
	case bytes.ContainsAny(e.Body, "\r\n"):
		if err := json.Compact(b, e.Body); err != nil {
			b.Truncate(start)
			return err
		}
	default:
		b.Write(e.Body)
	}
	line = b.AvailableBuffer()
	if len(e.Metadata) > 0 {
		line = append(line, `,"metadata":{`...)
		for i, k := range slices.Sorted(maps.Keys(e.Metadata)) {
			if i > 0 {
				line = append(line, ',')
			}
			line = messages.AppendJSONString(line, k)
			line = append(line, ':')
			line = messages.AppendJSONString(line, e.Metadata[k])
		}
		line = append(line, '}')
	}
	line = append(line, "}\n"...)
	b.Write(line)
	return nil
}

// ArchiveConfig wires an Archive. Store is required.
type ArchiveConfig struct {
	// Store keeps the archive objects, under ArchivePrefix. A Put that returned is taken as
	// durable: the caller gives a store that syncs as the durability setting asks.
	Store pipeline.BlobStore
	// Window is how long a batch waits for more entries after its first before it is written
	// (group commit). Default 2ms; 1s when Background.
	Window time.Duration
	// MaxBatch writes a batch as soon as it holds this many entries (default 500).
	MaxBatch int
	// Background makes every ArchiveWrite report success at once: nobody waits for the write,
	// and a batch that fails is kept for the next one (lost if the process dies first).
	// Otherwise a failed batch fails the waits of its entries, whose messages must then be
	// delivered again.
	Background bool
	// Retention is how long archived entries are kept (0: forever). Older hour partitions are
	// deleted at start and hourly, when the store can list and delete.
	Retention time.Duration
	Logger    zerolog.Logger
}

// Archive keeps every accepted job message as time-partitioned JSON lines
// (archive/YYYY/MM/DD/HH/<time>-<n>.jsonl) in the result store, for replay. Entries are written
// in batches, one object per batch and hour partition (or, where the store can append, one
// append per batch to an object of this Archive's per hour partition): a batch is written Window after its
// first entry or as soon as it holds MaxBatch, up to four batches at a time, so that under
// load the batches grow while earlier ones are written (group commit). Add returns an ArchiveWrite
// whose Wait returns once the entry's batch is written, so that a worker acknowledges a message
// only once its entry is in the archive. Safe for concurrent use.
type Archive struct {
	cfg ArchiveConfig
	mu  sync.Mutex
	cur *archiveBatch
	// lastLen is how many entries the last batch taken held, to size the next.
	lastLen int
	shut    bool
	ready   chan struct{} // a new batch was started
	full    chan struct{} // the current batch reached MaxBatch
	stop    chan struct{}
	done    chan struct{}
	seq     atomic.Uint64
	close   sync.Once
	// writers bounds the batches written at once; inflight tracks them.
	writers  chan struct{}
	inflight sync.WaitGroup
	// id names this archive's objects in a store that appends: the start time and a random
	// part, so that processes sharing a directory never append to one object.
	id string
}

// archiveBatch is the entries one write takes; done is closed once err is set. write is the
// place every entry of the batch gets from Add (one handle per batch, not per entry).
type archiveBatch struct {
	entries []ArchiveEntry
	done    chan struct{}
	err     error
	write   *ArchiveWrite
}

// newArchiveBatch returns an empty batch with room for size entries.
func newArchiveBatch(size int) *archiveBatch {
	b := &archiveBatch{entries: make([]ArchiveEntry, 0, size), done: make(chan struct{})}
	b.write = &ArchiveWrite{batch: b}
	return b
}

// ArchiveWrite is one entry's place in a batch. A nil *ArchiveWrite is written already.
type ArchiveWrite struct {
	batch *archiveBatch
	err   error
}

// Wait returns once the entry's batch is written: nil when it is in the archive, the write's
// error when it is not (then its message must not be acknowledged), or ctx's error.
func (w *ArchiveWrite) Wait(ctx context.Context) error {
	if w == nil {
		return nil
	}
	if w.err != nil || w.batch == nil {
		return w.err
	}
	select {
	case <-w.batch.done:
		return w.batch.err
	case <-ctx.Done():
		return fmt.Errorf("wait for the archive write: %w", ctx.Err())
	}
}

// NewArchive starts an Archive's write loop; Close stops it after a last write.
func NewArchive(cfg ArchiveConfig) (*Archive, error) {
	if cfg.Store == nil {
		return nil, errors.New("archive: no result store configured")
	}
	if cfg.Background {
		cfg.Window = cmpDuration(cfg.Window, defaultArchiveBackground)
	} else {
		cfg.Window = cmpDuration(cfg.Window, defaultArchiveWindow)
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = defaultArchiveBatch
	}
	a := &Archive{cfg: cfg, ready: make(chan struct{}, 1), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), writers: make(chan struct{}, archiveWriters),
		id: fmt.Sprintf("%d-%016x", time.Now().UTC().UnixNano(), rand.Uint64())}
	go a.loop()
	return a, nil
}

// Add puts e in the current batch and returns its place there. A nil *Archive ignores e.
func (a *Archive) Add(e ArchiveEntry) *ArchiveWrite {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	if a.shut {
		a.mu.Unlock()
		if a.cfg.Background {
			return nil
		}
		return &ArchiveWrite{err: ErrArchiveClosed}
	}
	first := a.cur == nil
	if first {
		// Room for as many entries as the last batch took: under steady load, no growing.
		a.cur = newArchiveBatch(min(max(a.lastLen, 8), a.cfg.MaxBatch))
	}
	b := a.cur
	b.entries = append(b.entries, e)
	full := len(b.entries) >= a.cfg.MaxBatch
	a.mu.Unlock()
	if first {
		signal(a.ready)
	}
	if full {
		signal(a.full)
	}
	if a.cfg.Background {
		return nil
	}
	return b.write
}

// signal wakes the loop through c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (a *Archive) loop() {
	defer close(a.done)
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	a.prune(context.Background(), time.Now())
	window := time.NewTimer(a.cfg.Window)
	window.Stop()
	for {
		select {
		case <-a.ready:
		case now := <-prune.C:
			a.prune(context.Background(), now)
			continue
		case <-a.stop:
			a.inflight.Wait()
			a.Flush(context.Background())
			return
		}
		window.Reset(a.cfg.Window)
		select {
		case <-window.C:
		case <-a.full:
		case <-a.stop:
			a.inflight.Wait()
			a.Flush(context.Background())
			return
		}
		window.Stop()
		// Up to archiveWriters batches are written at once: a batch's waiters need not wait
		// for the write before theirs to return.
		a.writers <- struct{}{}
		b := a.take()
		a.inflight.Go(func() {
			defer func() { <-a.writers }()
			a.flushBatch(context.Background(), b)
		})
	}
}

// take detaches the current batch (nil when there is none).
func (a *Archive) take() *archiveBatch {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.cur
	a.cur = nil
	if b != nil {
		a.lastLen = len(b.entries)
	}
	select { // a full signal of this batch is spent by its write
	case <-a.full:
	default:
	}
	return b
}

// Flush writes the current batch now, one object per hour partition, and reports the write's
// outcome to the batch's waiters. In the background mode a batch that cannot be written is kept
// for the next write.
func (a *Archive) Flush(ctx context.Context) {
	a.flushBatch(ctx, a.take())
}

// flushBatch writes b and reports the outcome to its waiters.
func (a *Archive) flushBatch(ctx context.Context, b *archiveBatch) {
	if b == nil {
		return
	}
	b.err = a.write(ctx, b.entries)
	close(b.done)
	if b.err == nil || !a.cfg.Background {
		return
	}
	a.mu.Lock()
	if a.cur == nil {
		a.cur = newArchiveBatch(len(b.entries))
		signal(a.ready)
	}
	a.cur.entries = append(b.entries, a.cur.entries...)
	a.mu.Unlock()
}

// archiveBuffers are the buffers write builds its objects in, kept from one batch to the
// next (a batch of a few hundred jobs needs ~200 KB): stores do not keep what they are given
// (pipeline.BlobStore). Buffers larger than maxPooledArchiveBuffer are left to the GC.
var archiveBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledArchiveBuffer is the largest buffer archiveBuffers keeps.
const maxPooledArchiveBuffer = 4 << 20

// write puts entries in the store, one object per hour partition.
func (a *Archive) write(ctx context.Context, entries []ArchiveEntry) error {
	parts := map[string]*bytes.Buffer{}
	defer func() {
		for _, b := range parts {
			if b.Cap() <= maxPooledArchiveBuffer {
				b.Reset()
				archiveBuffers.Put(b)
			}
		}
	}()
	// A batch's entries mostly fall in one hour: its key is formatted once per hour met.
	var hour time.Time
	key := ""
	for _, e := range entries {
		if h := e.AcceptedAt.UTC().Truncate(time.Hour); key == "" || !h.Equal(hour) {
			hour, key = h, h.Format(archivePartitionHour)
		}
		b := parts[key]
		if b == nil {
			// Room for the entries' bodies and their other fields (most batches hold one
			// partition), so that the buffer rarely grows.
			size := 0
			for _, e := range entries {
				size += len(e.Body) + archiveLineOverhead
			}
			b = archiveBuffers.Get().(*bytes.Buffer)
			b.Grow(size)
			parts[key] = b
		}
		if err := appendArchiveLine(b, e); err != nil {
			a.cfg.Logger.Warn().Err(err).Str("job_id", e.JobID).Msg("archive entry left out: its body is not JSON")
		}
	}
	now := time.Now().UTC().UnixNano()
	appender, appends := a.cfg.Store.(pipeline.BlobAppender)
	var errs []error
	for part, b := range parts {
		var err error
		key := fmt.Sprintf("%s%s/%d-%d.jsonl", ArchivePrefix, part, now, a.seq.Add(1))
		if appends {
			// One object per archive and hour, grown by one append per batch: a file
			// created per batch costs the local disk far more than a write.
			key = fmt.Sprintf("%s%s/%s.jsonl", ArchivePrefix, part, a.id)
			err = appender.Append(ctx, key, b.Bytes())
		} else {
			err = a.cfg.Store.Put(ctx, key, b.Bytes())
		}
		if err != nil {
			a.cfg.Logger.Warn().Err(err).Str("key", key).Int("entries", len(entries)).Msg("archive write failed")
			errs = append(errs, fmt.Errorf("archive write %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// Close writes what is batched and stops the write loop; later Adds fail (ErrArchiveClosed).
// Safe to call twice; nil is a no-op.
func (a *Archive) Close() error {
	if a == nil {
		return nil
	}
	a.close.Do(func() {
		a.mu.Lock()
		a.shut = true
		a.mu.Unlock()
		close(a.stop)
	})
	<-a.done
	return nil
}
