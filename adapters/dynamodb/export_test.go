package dynamodb

import (
	"context"
	"time"
)

// SetClaimWait sets how long Create of s waits for the job of another's fresh claim, for tests.
func SetClaimWait(s *Store, d time.Duration) { s.claimWait = d }

// TableDefinition is tableDefinition, for tests.
var TableDefinition = tableDefinition

// DisableStatsCounters stops s counting jobs for JobStats, for benchmarks of their cost.
func DisableStatsCounters(s *Store) { s.noStats = true }

// FlushStats writes the job counts s has buffered, as its next flush would.
func FlushStats(s *Store) { s.flush(context.Background()) }

// StatsWrites returns how many counter writes s has made.
func StatsWrites(s *Store) int64 { return s.counters.writes.Load() }

// StopStatsFlushes stops the flushes s makes every second (not those of FlushStats or
// JobStats), so that a test decides when counts are written.
func StopStatsFlushes(s *Store) {
	close(s.counters.stop)
	<-s.counters.done
	s.counters.stop = nil
}

// ForceCancelSweep makes the next CancelledAmong of s check every job it is asked about.
func ForceCancelSweep(s *Store) { s.lastSweep.Store(0) }

// CancelMarkerItem returns the key of the cancel marker item of now's window.
func CancelMarkerItem(now time.Time) string { return cancelPK(cancelWindowOf(now)) }

// SetRecountSettle sets how long RecountLive of s waits before it compares the counters.
func SetRecountSettle(s *Store, d time.Duration) { s.recountSettle = d }

// TakeRecount takes the fleet's recount lease for s at now, as its recount turns do.
func TakeRecount(s *Store, now time.Time) (bool, error) {
	return s.takeRecount(context.Background(), now)
}
