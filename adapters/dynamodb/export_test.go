package dynamodb

import "time"

// SetClaimWait sets how long Create of s waits for the job of another's fresh claim, for tests.
func SetClaimWait(s *Store, d time.Duration) { s.claimWait = d }

// TableDefinition is tableDefinition, for tests.
var TableDefinition = tableDefinition

// DisableStatsCounters stops s counting jobs for JobStats, for benchmarks of their cost.
func DisableStatsCounters(s *Store) { s.noStats = true }
