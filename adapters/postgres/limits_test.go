package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

func TestLimitsTakeRefillsAtTheRate(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		d, err := s.Take(ctx, "k", 2, 3, 1, t0)
		if err != nil || !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("take %d = %+v, %v; want allowed with %d left", i, d, err, 2-i)
		}
	}
	if d, err := s.Take(ctx, "k", 2, 3, 1, t0); err != nil || d.Allowed || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("take over burst = %+v, %v; want refused, retry after 500ms", d, err)
	}
	if d, _ := s.Take(ctx, "k", 2, 3, 1, t0.Add(-time.Minute)); d.Allowed {
		t.Fatalf("take with a clock behind = %+v, want refused", d)
	}
	if d, _ := s.Take(ctx, "k", 2, 3, 1, t0.Add(500*time.Millisecond)); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("take after 500ms = %+v, want allowed with 0 left", d)
	}
	if d, _ := s.Take(ctx, "k", 2, 3, 1, t0.Add(time.Hour)); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("take after an hour = %+v, want allowed with 2 left (capped at burst)", d)
	}
}

// Two stores on one database stand for two ingress processes: between them they get exactly
// the burst at a frozen clock, and exactly the quota, which survives a new store.
func TestLimitsAreSharedAcrossStores(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t)
	b, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	t0 := time.Unix(1_700_000_000, 0)
	var granted, quota atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*postgres.Store{a, b}[i%2]
			if d, err := s.Take(context.Background(), "shared", 0.001, 15, 1, t0); err == nil && d.Allowed {
				granted.Add(1)
			}
			if d, err := s.UseQuota(context.Background(), "q:2026-11", 25, 1); err == nil && d.Allowed {
				quota.Add(1)
			}
		}()
	}
	wg.Wait()
	if granted.Load() != 15 || quota.Load() != 25 {
		t.Fatalf("granted %d of burst 15, quota %d of 25", granted.Load(), quota.Load())
	}
	if d, err := b.UseQuota(t.Context(), "q:2026-11", 25, -1); err != nil || !d.Allowed || d.Used != 24 {
		t.Fatalf("refund = %+v, %v; want 24 used", d, err)
	}
	if d, _ := a.UseQuota(t.Context(), "q:2026-11", 25, 2); d.Allowed {
		t.Fatalf("over quota = %+v, want refused", d)
	}
}

func TestLeasesConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t)
	storetest.RunLeases(t, func(t *testing.T) (pipeline.LeaseStore, pipeline.LeaseStore) {
		b, err := postgres.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}

func TestUsageConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t)
	storetest.RunUsage(t, func(t *testing.T) (pipeline.UsageStore, pipeline.UsageStore) {
		b, err := postgres.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}

func TestModelStatsConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t)
	storetest.RunModelStats(t, func(t *testing.T) (pipeline.ModelStatsStore, pipeline.ModelStatsStore) {
		b, err := postgres.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}

func TestPaceConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t)
	storetest.RunPace(t, func(t *testing.T) (pipeline.PaceStore, pipeline.PaceStore) {
		b, err := postgres.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}

func TestReplaysConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t)
	storetest.RunReplays(t, func(t *testing.T) (pipeline.ReplayStore, pipeline.ReplayStore) {
		b, err := postgres.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return a, b
	})
}
