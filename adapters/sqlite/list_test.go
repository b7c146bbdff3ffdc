package sqlite_test

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// TestListWalksAnIndexInOrder checks that each kind of job list reads its page from an index
// in the list's order, never sorting the matching jobs: in particular that a tenant's list uses
// the partial tenant index, which SQLite takes only when the query repeats its condition.
func TestListWalksAnIndexInOrder(t *testing.T) {
	t.Parallel()
	_, cfg := setup(t)
	db, err := sql.Open("sqlite", cfg.Path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	cursor := storecodec.EncodeListCursor(1_700_000_000_000, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	for _, tc := range []struct {
		name  string
		q     pipeline.ListQuery
		index string
	}{
		{"all", pipeline.ListQuery{}, "jobs_created"},
		{"status", pipeline.ListQuery{Status: messages.StatusCompleted}, "jobs_status_created"},
		{"tenant", pipeline.ListQuery{Tenant: "acme"}, "jobs_tenant_created"},
		{"all, next page", pipeline.ListQuery{Cursor: cursor}, "jobs_created"},
		{"status, next page", pipeline.ListQuery{Status: messages.StatusQueued, Cursor: cursor}, "jobs_status_created"},
		{"tenant, next page", pipeline.ListQuery{Tenant: "acme", Cursor: cursor}, "jobs_tenant_created"},
	} {
		query, args, err := sqlite.ListQuery(tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		plan := queryPlan(t, db, query, args...)
		if !strings.Contains(plan, "USING INDEX "+tc.index) || strings.Contains(plan, "TEMP B-TREE") ||
			(tc.q.Cursor != "" && !strings.Contains(plan, "<")) {
			t.Errorf("%s list does not walk %s in order; plan:\n%s", tc.name, tc.index, plan)
		}
	}
}

// queryPlan returns SQLite's EXPLAIN QUERY PLAN of query, one step a line.
func queryPlan(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
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
	return strings.Join(plan, "\n")
}
