package sqlite_test

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/infleet/infleet/adapters/sqlite"
)

// TestExpireUsesTheFinishedIndex checks that the reaper's DELETE walks the partial index of
// finished jobs in order: without it SQLite would sort every finished job to find the few old
// enough to go.
func TestExpireUsesTheFinishedIndex(t *testing.T) {
	t.Parallel()
	_, cfg := setup(t)
	db, err := sql.Open("sqlite", cfg.Path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+sqlite.ExpireSQL, 0, 500)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatalf("scan plan: %v", err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("plan: %v", err)
	}
	joined := strings.Join(plan, "\n")
	if !strings.Contains(joined, "USING INDEX jobs_finished") || strings.Contains(joined, "TEMP B-TREE") {
		t.Fatalf("the expiry DELETE does not walk the jobs_finished index in order; plan:\n%s", joined)
	}
	t.Logf("plan:\n%s", joined)
}
