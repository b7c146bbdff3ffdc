package postgres_test

import (
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/postgres"
)

// TestExpireUsesTheFinishedIndex checks the plan of the reaper's DELETE: the partial index of
// finished jobs picks the rows, and the DELETE reaches them by ctid, not by scanning the table.
func TestExpireUsesTheFinishedIndex(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	// A table of some size, analyzed, so the planner costs it as it would in production.
	if err := postgres.Exec(t.Context(), s, `INSERT INTO jobs (job_id, status, created_at, updated_at)
		SELECT 'job-' || g, (ARRAY['QUEUED', 'COMPLETED', 'FAILED'])[1 + g % 3], now(), now() - g * interval '1 second'
		FROM generate_series(1, 20000) g`); err != nil {
		t.Fatalf("fill jobs: %v", err)
	}
	if err := postgres.Exec(t.Context(), s, "ANALYZE jobs"); err != nil {
		t.Fatalf("analyze: %v", err)
	}
	plan, err := postgres.Explain(t.Context(), s, postgres.ExpireSQL, time.Now().Add(-time.Hour), 500)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	joined := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", joined)
	if !strings.Contains(joined, "jobs_finished") || !strings.Contains(joined, "Tid Scan") || strings.Contains(joined, "Seq Scan") {
		t.Fatalf("the expiry DELETE should find rows through jobs_finished and delete them by ctid; plan:\n%s", joined)
	}
}
