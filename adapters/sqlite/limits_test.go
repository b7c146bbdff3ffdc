package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

// openLimits opens a Limits on path, closed at the end of the test.
func openLimits(t *testing.T, path string) *sqlite.Limits {
	t.Helper()
	l, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("OpenLimits: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestLimitsTakeRefillsAtTheRate(t *testing.T) {
	t.Parallel()
	l := openLimits(t, filepath.Join(t.TempDir(), "limits.db"))
	ctx := t.Context()
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		d, err := l.Take(ctx, "k", 2, 3, 1, t0)
		if err != nil || !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("take %d = %+v, %v; want allowed with %d left", i, d, err, 2-i)
		}
	}
	d, err := l.Take(ctx, "k", 2, 3, 1, t0)
	if err != nil || d.Allowed || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("take over burst = %+v, %v; want refused, retry after 500ms", d, err)
	}
	// A clock behind the store's refills nothing.
	if d, _ := l.Take(ctx, "k", 2, 3, 1, t0.Add(-time.Minute)); d.Allowed {
		t.Fatalf("take with a clock behind = %+v, want refused", d)
	}
	if d, _ := l.Take(ctx, "k", 2, 3, 1, t0.Add(500*time.Millisecond)); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("take after 500ms = %+v, want allowed with 0 left", d)
	}
	if d, _ := l.Take(ctx, "k", 2, 3, 1, t0.Add(time.Hour)); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("take after an hour = %+v, want allowed with 2 left (capped at burst)", d)
	}
	if d, _ := l.Take(ctx, "other", 2, 3, 4, t0); d.Allowed {
		t.Fatalf("cost over burst = %+v, want refused", d)
	}
}

// Two handles on one file stand for two ingress processes: between them they get exactly the
// burst at a frozen clock, and exactly the quota.
func TestLimitsAreSharedByHandlesOnOneFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	handles := []*sqlite.Limits{openLimits(t, path), openLimits(t, path)}
	now := time.Unix(1_700_000_000, 0)
	var rateOK, quotaOK atomic.Int64
	var wg sync.WaitGroup
	for _, l := range handles {
		for range 4 {
			wg.Go(func() {
				for range 50 {
					d, err := l.Take(context.Background(), "rate:acme", 0.001, 100, 1, now)
					if err != nil {
						t.Errorf("Take: %v", err)
						return
					}
					if d.Allowed {
						rateOK.Add(1)
					}
					q, err := l.UseQuota(context.Background(), "quota:acme:2026-11", 70, 1)
					if err != nil {
						t.Errorf("UseQuota: %v", err)
						return
					}
					if q.Allowed {
						quotaOK.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	if rateOK.Load() != 100 || quotaOK.Load() != 70 {
		t.Fatalf("granted %d takes and %d quota units; want exactly 100 and 70", rateOK.Load(), quotaOK.Load())
	}
}

func TestLimitsQuotaSurvivesReopenAndRefunds(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "quota.db")
	ctx := t.Context()
	l, err := sqlite.OpenLimits(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := l.UseQuota(ctx, "q", 3, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLimits(t, path)
	if d, err := l.UseQuota(ctx, "q", 3, 1); err != nil || d.Allowed || d.Used != 3 {
		t.Fatalf("after reopen = %+v, %v; want refused at 3 used", d, err)
	}
	if d, _ := l.UseQuota(ctx, "q", 3, -1); !d.Allowed || d.Used != 2 {
		t.Fatalf("refund = %+v, want 2 used", d)
	}
	if d, _ := l.UseQuota(ctx, "q", 3, 1); !d.Allowed || d.Used != 3 {
		t.Fatalf("after refund = %+v, want allowed at 3", d)
	}
	if d, _ := l.UseQuota(ctx, "fresh", 3, -5); d.Used != 0 {
		t.Fatalf("refund below zero = %+v, want 0 used", d)
	}
	// A job store on the same file still opens: the schema versions agree.
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatalf("Open job store on the limits file: %v", err)
	}
	_ = s.Close()
}

func TestQuotaWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 31, 23, 59, 0, 0, time.FixedZone("x", 3600))
	if id, end := pipeline.QuotaWindow("day", now); id != "2026-12-31" || !end.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("day window = %s, %s", id, end)
	}
	if id, end := pipeline.QuotaWindow("month", now); id != "2026-12" || !end.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("month window = %s, %s", id, end)
	}
}

func TestLeasesConformance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "leases.db")
	storetest.RunLeases(t, func(t *testing.T) (a, b pipeline.LeaseStore) {
		return openLimits(t, path), openLimits(t, path)
	})
}

func TestUsageConformance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "usage.db")
	storetest.RunUsage(t, func(t *testing.T) (a, b pipeline.UsageStore) {
		return openLimits(t, path), openLimits(t, path)
	})
}

func TestModelStatsConformance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "modelstats.db")
	storetest.RunModelStats(t, func(t *testing.T) (a, b pipeline.ModelStatsStore) {
		return openLimits(t, path), openLimits(t, path)
	})
}

func TestPaceConformance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pace.db")
	storetest.RunPace(t, func(t *testing.T) (a, b pipeline.PaceStore) {
		return openLimits(t, path), openLimits(t, path)
	})
}

func TestReplaysConformance(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "replays.db")
	storetest.RunReplays(t, func(t *testing.T) (a, b pipeline.ReplayStore) {
		return openLimits(t, path), openLimits(t, path)
	})
}
