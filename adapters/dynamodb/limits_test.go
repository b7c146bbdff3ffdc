package dynamodb_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

func TestLimitsTakeRefillsAtTheRate(t *testing.T) {
	t.Parallel()
	s, _ := setup(t, 0)
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
	// A clock behind the store's refills nothing.
	if d, _ := s.Take(ctx, "k", 2, 3, 1, t0.Add(-time.Minute)); d.Allowed {
		t.Fatalf("take with a clock behind = %+v, want refused", d)
	}
	if d, _ := s.Take(ctx, "k", 2, 3, 1, t0.Add(500*time.Millisecond)); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("take after 500ms = %+v, want allowed with 0 left", d)
	}
	if d, _ := s.Take(ctx, "k", 2, 3, 1, t0.Add(time.Hour)); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("take after an hour = %+v, want allowed with 2 left (capped at burst)", d)
	}
	if d, _ := s.Take(ctx, "other", 2, 3, 4, t0); d.Allowed {
		t.Fatalf("cost over burst = %+v, want refused", d)
	}
	// A fractional rate refills fractions, kept across takes.
	if d, _ := s.Take(ctx, "slow", 0.3, 1, 1, t0); !d.Allowed {
		t.Fatalf("first take of a slow bucket = %+v, want allowed", d)
	}
	for _, step := range []struct {
		after time.Duration
		ok    bool
	}{{time.Second, false}, {3 * time.Second, false}, {3400 * time.Millisecond, true}} {
		if d, _ := s.Take(ctx, "slow", 0.3, 1, 1, t0.Add(step.after)); d.Allowed != step.ok {
			t.Fatalf("slow bucket after %s = %+v, want allowed %v", step.after, d, step.ok)
		}
	}
}

// Two stores on one table, each with its own client, stand for two ingress processes: between
// them they get exactly the burst at a frozen clock, and exactly the quota.
func TestLimitsAreSharedAcrossStores(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	b := reopen(t, cfg)
	t0 := time.Unix(1_700_000_000, 0)
	var granted, quota atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		s := []*dynamodb.Store{a, b}[i%2]
		wg.Go(func() {
			d, err := s.Take(context.Background(), "shared", 0.001, 15, 1, t0)
			if err != nil {
				t.Errorf("Take: %v", err)
			} else if d.Allowed {
				granted.Add(1)
			}
			q, err := s.UseQuota(context.Background(), "q:2026-11", 25, 1)
			if err != nil {
				t.Errorf("UseQuota: %v", err)
			} else if q.Allowed {
				quota.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != 15 || quota.Load() != 25 {
		t.Fatalf("granted %d of burst 15, quota %d of 25", granted.Load(), quota.Load())
	}
	if d, err := b.UseQuota(t.Context(), "q:2026-11", 25, -1); err != nil || !d.Allowed || d.Used != 24 {
		t.Fatalf("refund = %+v, %v; want 24 used", d, err)
	}
	if d, _ := a.UseQuota(t.Context(), "q:2026-11", 25, 2); d.Allowed || d.Used != 24 {
		t.Fatalf("over quota = %+v, want refused at 24 used", d)
	}
}

// Quota usage lives in the table: a new store (a restarted process) sees it.
func TestLimitsQuotaSurvivesReopenAndRefunds(t *testing.T) {
	t.Parallel()
	s, cfg := setup(t, 0)
	ctx := t.Context()
	for range 3 {
		if _, err := s.UseQuota(ctx, "q", 3, 1); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, cfg)
	if d, err := s.UseQuota(ctx, "q", 3, 1); err != nil || d.Allowed || d.Used != 3 {
		t.Fatalf("after reopen = %+v, %v; want refused at 3 used", d, err)
	}
	if d, _ := s.UseQuota(ctx, "q", 3, -1); !d.Allowed || d.Used != 2 {
		t.Fatalf("refund = %+v, want 2 used", d)
	}
	if d, _ := s.UseQuota(ctx, "q", 3, 1); !d.Allowed || d.Used != 3 {
		t.Fatalf("after refund = %+v, want allowed at 3", d)
	}
	if d, _ := s.UseQuota(ctx, "q", 3, -5); !d.Allowed || d.Used != 0 {
		t.Fatalf("refund below zero = %+v, want allowed at 0 used", d)
	}
	if d, _ := s.UseQuota(ctx, "fresh", 3, -5); !d.Allowed || d.Used != 0 {
		t.Fatalf("refund of an unused quota = %+v, want 0 used", d)
	}
	if d, _ := s.UseQuota(ctx, "big", 3, 4); d.Allowed {
		t.Fatalf("cost over the limit = %+v, want refused", d)
	}
}

func TestLeasesConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	storetest.RunLeases(t, func(t *testing.T) (pipeline.LeaseStore, pipeline.LeaseStore) {
		return a, reopen(t, cfg)
	})
}

func TestUsageConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	storetest.RunUsage(t, func(t *testing.T) (pipeline.UsageStore, pipeline.UsageStore) {
		return a, reopen(t, cfg)
	})
}

func TestModelStatsConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	storetest.RunModelStats(t, func(t *testing.T) (pipeline.ModelStatsStore, pipeline.ModelStatsStore) {
		return a, reopen(t, cfg)
	})
}

func TestPaceConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	storetest.RunPace(t, func(t *testing.T) (pipeline.PaceStore, pipeline.PaceStore) {
		return a, reopen(t, cfg)
	})
}

func TestReplaysConformance(t *testing.T) {
	t.Parallel()
	a, cfg := setup(t, 0)
	storetest.RunReplays(t, func(t *testing.T) (pipeline.ReplayStore, pipeline.ReplayStore) {
		return a, reopen(t, cfg)
	})
}
