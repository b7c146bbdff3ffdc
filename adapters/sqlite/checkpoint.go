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
	// writerAutoCheckpoint is the WAL size, in pages, at which the writer checkpoints by
	// itself: a safety net for when the checkpointer falls behind. SQLite's default is 1000.
	writerAutoCheckpoint = 16384
)

// checkpointLoop runs passive WAL checkpoints on its own connection, so that the fsyncs a
// checkpoint costs stall neither the writer nor readers. It returns when s.closing is closed.
func (s *Store) checkpointLoop(conn *sql.Conn) {
	defer close(s.checkpointDone)
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-tick.C:
		}
		if !s.dirty.Swap(false) {
			continue
		}
		var busy, logFrames, checkpointed int
		err := conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &checkpointed)
		if err != nil {
			s.log.Warn().Err(fmt.Errorf("checkpoint %s: %w", s.path, err)).Msg("wal checkpoint failed; the writer will checkpoint instead")
			continue
		}
		if logFrames != checkpointed {
			// Readers held old snapshots: try again at the next tick.
			s.dirty.Store(true)
		}
	}
}
