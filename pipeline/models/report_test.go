package models_test

import (
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/pipeline/models"
)

// TestReportsShowLiveFiguresAgainstLimits calls one model that answers and one that throttles
// every call, and reads their reports: latency percentiles, error and throttle rates, the last
// minute's calls and tokens, limits, spend and budget.
func TestReportsShowLiveFiguresAgainstLimits(t *testing.T) {
	t.Parallel()
	p := fastPolicy()
	p.MaxAttempts = 1
	p.ThrottleFallback = true // the throttled model's calls go to good, which then reports them
	b := setup(t, map[string]fmsim.Faults{
		"good":      {Latency: fmsim.Latency{P50: 5 * time.Millisecond}},
		"throttled": {ThrottleRate: 1, RetryAfter: time.Millisecond},
	}, p,
		models.ModelSpec{Name: "good", Limits: models.Limits{RPM: 6000, TPM: 100000, MaxConcurrency: 4},
			Price: models.Price{InputPerMTok: 1000, OutputPerMTok: 1000}},
		models.ModelSpec{Name: "throttled", Fallbacks: []string{"good"}})
	r, err := models.CompileRouting(models.RoutingSpec{
		Routes:  map[string]string{"default": "good"},
		Budgets: []models.Budget{{Model: "good", DailyUSD: 50, DowngradeTo: "throttled"}},
	}, b.fleet.Has)
	if err != nil {
		t.Fatal(err)
	}
	picker := models.NewPicker(b.fleet, r)
	var tokens int64
	for range 10 {
		resp, err := b.fleet.Client("good").Invoke(t.Context(), request("a few words here"))
		if err != nil {
			t.Fatal(err)
		}
		tokens += int64(resp.Usage.InputTokens + resp.Usage.OutputTokens)
	}
	for range 4 {
		_, _ = b.fleet.ClientWith("throttled", models.CallOptions{}).Invoke(t.Context(), request("x"))
	}

	reports := picker.Reports()
	if len(reports) != 2 || reports[0].Name != "good" || reports[1].Name != "throttled" {
		t.Fatalf("reports: %+v", reports)
	}
	good, thr := reports[0], reports[1]
	// The throttled model's calls fell back to good: 4 more answered calls there.
	if good.Calls != 14 || good.CallsPerMinute != 14 || good.ErrorRate != 0 || good.ThrottleRate != 0 ||
		good.P50Ms < 4 || good.P95Ms < good.P50Ms || good.Circuit != "closed" {
		t.Fatalf("good: %+v", good)
	}
	if good.TokensPerMinute <= tokens || good.Limits != (models.Limits{RPM: 6000, TPM: 100000, MaxConcurrency: 4}) ||
		good.BudgetUSD != 50 || good.SpendTodayUSD <= 0 {
		t.Fatalf("good: %+v (tokens of the first 10 calls %d)", good, tokens)
	}
	if thr.Calls != 4 || thr.ThrottleRate != 1 || thr.ErrorRate != 1 || thr.TokensPerMinute != 0 ||
		thr.BudgetUSD != 0 || len(thr.Fallbacks) != 1 {
		t.Fatalf("throttled: %+v", thr)
	}
}
