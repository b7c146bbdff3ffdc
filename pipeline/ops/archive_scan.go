package ops

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/infleet/infleet/pipeline"
)

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
	r := bufio.NewReaderSize(rc, 64<<10)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			// A last line without its newline is an append still being written, or one cut
			// off by a crash: its job's message was not acknowledged, so it is archived again.
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read archive %s: %w", key, err)
		}
		var e ArchiveEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return false, fmt.Errorf("archive %s line %s: %w", key, strconv.Itoa(line), err)
		}
		if e.AcceptedAt.Before(from) || e.AcceptedAt.After(to) {
			continue
		}
		if !fn(e) {
			return false, nil
		}
	}
}
