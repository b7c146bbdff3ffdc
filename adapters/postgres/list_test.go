package postgres_test

import (
	"strings"
	"testing"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// TestListWalksAnIndexInOrder checks that each kind of job list can read its page from an
// index in the list's order (backwards), without sorting the matching jobs: in particular that
// a tenant's list can use the partial tenant index, which the planner takes only when the query
// implies its condition.
func TestListWalksAnIndexInOrder(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	cursor := storecodec.EncodeListCursor(1_700_000_000_000, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	for _, tc := range []struct {
		name  string
		q     pipeline.ListQuery
		index string
	}{
		{"all", pipeline.ListQuery{}, "jobs_created_asc"},
		{"status", pipeline.ListQuery{Status: messages.StatusCompleted}, "jobs_status_created_asc"},
		{"tenant", pipeline.ListQuery{Tenant: "acme"}, "jobs_tenant_created_asc"},
		{"all, next page", pipeline.ListQuery{Cursor: cursor}, "jobs_created_asc"},
		{"status, next page", pipeline.ListQuery{Status: messages.StatusQueued, Cursor: cursor}, "jobs_status_created_asc"},
		{"tenant, next page", pipeline.ListQuery{Tenant: "acme", Cursor: cursor}, "jobs_tenant_created_asc"},
	} {
		query, args, err := postgres.ListQuery(tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		lines, err := postgres.ExplainWithout(t.Context(), s, query, args...)
		if err != nil {
			t.Fatalf("%s: explain: %v", tc.name, err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, "Index Scan Backward using "+tc.index) || strings.Contains(plan, "Sort") {
			t.Errorf("%s list does not walk %s in order; plan:\n%s", tc.name, tc.index, plan)
		}
	}
}
