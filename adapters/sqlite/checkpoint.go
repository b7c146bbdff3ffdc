package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

const (
	// checkpointInterval is how often the checkpointer copies the WAL into the database
	// file when there were writes since its last run.
	checkpointInterval = 250 * time.Millisecond
	// writebackInterval is how often, between checkpoints, the checkpointer starts the
	// kernel writing back what was committed to the WAL since (synchronous NORMAL only).
	writebackInterval = 50 * time.Millisecond
	// writerAutoCheckpoint is the WAL size, in pages, at which the writer checkpoints by
	// itself: a safety net for when the checkpointer falls behind. SQLite's default is 1000.
	writerAutoCheckpoint = 16384
)

// checkpointLoop runs passive WAL checkpoints on its own connection, so that the fsyncs a
// checkpoint costs stall neither the writer nor readers. It returns when s.closing is closed.
//
// A checkpoint first fsyncs the WAL (at synchronous NORMAL the commits are not synced), and
// the goroutine in that fsync keeps its processor (P) from the Go scheduler for as long as it
// waits: the runtime takes a P back from a system call only once its monitor has seen the
// call on two of its ticks, up to 10 ms apart in a program whose system calls are all short.
// With 250 ms of commits to write the fsync waited 7–15 ms on the VM disks measured, one of two
// Ps idle and the goroutines queued on it waiting. So between checkpoints the checkpointer
// starts the kernel writing back what the writer committed (walWriteback, every
// writebackInterval), and the checkpoint's fsync finds little left to wait for.
func (s *Store) checkpointLoop(conn *sql.Conn) {
	defer close(s.checkpointDone)
	wal := walWriteback{path: s.path + "-wal"}
	defer wal.close()
	tick := time.NewTicker(writebackInterval)
	defer tick.Stop()
	var written int64 // the commits whose writeback was started
	for ticks := 1; ; ticks++ {
		select {
		case <-s.closing:
			return
		case <-tick.C:
		}
		if c := s.commits.Load(); c != written && !s.syncFull {
			written = c
			wal.start()
		}
		if ticks%int(checkpointInterval/writebackInterval) != 0 || !s.dirty.Swap(false) {
			continue
		}
		var busy, logFrames, checkpointed int
		err := conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &checkpointed)
		if err != nil {
			s.log.Warn().Err(fmt.Errorf("checkpoint %s: %w", s.path, err)).Msg("wal checkpoint failed; the writer will checkpoint instead")
			continue
		}
		if logFrames != checkpointed {
			// Readers held old snapshots: try again at the next checkpoint.
			s.dirty.Store(true)
		}
	}
}
