package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// RunUsage runs the conformance suite of a pipeline.UsageStore. open returns two stores on one
// backing store, standing for two processes of a fleet; tenants are unique per subtest, so the
// backing store may be shared between subtests.
func RunUsage(t *testing.T, open func(t *testing.T) (a, b pipeline.UsageStore)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b pipeline.UsageStore, tenant string)
	}{
		{"AddsAcrossStores", testUsageAdds},
		{"Filters", testUsageFilters},
		{"ConcurrentAddsAreExact", testUsageConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, a, b, fmt.Sprintf("t-%s-%d", tc.name, time.Now().UnixNano()))
		})
	}
}

func mustAddUsage(t *testing.T, s pipeline.UsageStore, rows ...pipeline.UsageRow) {
	t.Helper()
	if err := s.AddUsage(t.Context(), rows); err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
}

func mustUsage(t *testing.T, s pipeline.UsageStore, f pipeline.UsageFilter) []pipeline.UsageRow {
	t.Helper()
	rows, err := s.Usage(t.Context(), f)
	if err != nil {
		t.Fatalf("Usage(%+v): %v", f, err)
	}
	return pipeline.GroupUsage(rows, []string{pipeline.UsageByDay, pipeline.UsageByTenant, pipeline.UsageByModel, pipeline.UsageByTask})
}

func usageRow(day, tenant, model, task string, calls int64) pipeline.UsageRow {
	return pipeline.UsageRow{Day: day, Tenant: tenant, Model: model, Task: task,
		Calls: calls, InputTokens: 10 * calls, OutputTokens: 20 * calls, CostNanoUSD: 1234567 * calls}
}

func testUsageAdds(t *testing.T, a, b pipeline.UsageStore, tenant string) {
	mustAddUsage(t, a, usageRow("2026-12-05", tenant, "m1", "chat", 1), usageRow("2026-12-05", tenant, "m1", "chat", 2))
	mustAddUsage(t, b, usageRow("2026-12-05", tenant, "m1", "chat", 4), usageRow("2026-12-05", tenant, "m2", "", 1))
	mustAddUsage(t, a)
	got := mustUsage(t, b, pipeline.UsageFilter{From: "2026-12-05", To: "2026-12-05", Tenant: tenant})
	want := []pipeline.UsageRow{usageRow("2026-12-05", tenant, "m1", "chat", 7), usageRow("2026-12-05", tenant, "m2", "", 1)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows = %+v\nwant %+v", got, want)
	}
}

func testUsageFilters(t *testing.T, a, b pipeline.UsageStore, tenant string) {
	other := tenant + "-other"
	mustAddUsage(t, a,
		usageRow("2026-11-30", tenant, "m1", "chat", 1),
		usageRow("2026-12-01", tenant, "m1", "chat", 2),
		usageRow("2026-12-01", tenant, "m2", "sum", 3),
		usageRow("2026-12-02", tenant, "m1", "sum", 4),
		usageRow("2026-12-03", tenant, "m1", "chat", 5),
		usageRow("2026-12-01", other, "m1", "chat", 6))
	for _, tc := range []struct {
		f    pipeline.UsageFilter
		want []pipeline.UsageRow
	}{
		{pipeline.UsageFilter{From: "2026-12-01", To: "2026-12-02", Tenant: tenant}, []pipeline.UsageRow{
			usageRow("2026-12-01", tenant, "m1", "chat", 2), usageRow("2026-12-01", tenant, "m2", "sum", 3), usageRow("2026-12-02", tenant, "m1", "sum", 4)}},
		{pipeline.UsageFilter{From: "2026-11-01", To: "2026-12-31", Tenant: tenant, Model: "m1", Task: "chat"}, []pipeline.UsageRow{
			usageRow("2026-11-30", tenant, "m1", "chat", 1), usageRow("2026-12-01", tenant, "m1", "chat", 2), usageRow("2026-12-03", tenant, "m1", "chat", 5)}},
		{pipeline.UsageFilter{From: "2026-12-01", To: "2026-12-01", Tenant: other}, []pipeline.UsageRow{usageRow("2026-12-01", other, "m1", "chat", 6)}},
		{pipeline.UsageFilter{From: "2026-12-04", To: "2026-12-09", Tenant: tenant}, []pipeline.UsageRow{}},
	} {
		if got := mustUsage(t, b, tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Usage(%+v) = %+v\nwant %+v", tc.f, got, tc.want)
		}
	}
	// Without a tenant, every tenant's rows of the day come back.
	var mine, theirs int64
	for _, r := range mustUsage(t, a, pipeline.UsageFilter{From: "2026-12-01", To: "2026-12-01", Model: "m1"}) {
		switch r.Tenant {
		case tenant:
			mine += r.Calls
		case other:
			theirs += r.Calls
		}
	}
	if mine != 2 || theirs != 6 {
		t.Errorf("unfiltered tenants: %d and %d calls, want 2 and 6", mine, theirs)
	}
}

func testUsageConcurrent(t *testing.T, a, b pipeline.UsageStore, tenant string) {
	const writers, adds = 8, 10
	var wg sync.WaitGroup
	for i := range writers {
		s := []pipeline.UsageStore{a, b}[i%2]
		wg.Go(func() {
			for range adds {
				if err := s.AddUsage(t.Context(), []pipeline.UsageRow{usageRow("2026-12-05", tenant, "m1", "chat", 1)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := mustUsage(t, a, pipeline.UsageFilter{From: "2026-12-05", To: "2026-12-05", Tenant: tenant})
	if want := []pipeline.UsageRow{usageRow("2026-12-05", tenant, "m1", "chat", writers*adds)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after %d concurrent adds: %+v, want %+v", writers*adds, got, want)
	}
}
