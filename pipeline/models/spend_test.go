package models_test

import (
	"context"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// fleetOnFile is one process of a fleet: its own handle on the shared SQLite file, a Fleet
// that keeps spend and usage there, and a Picker with spec.
func fleetOnFile(t testing.TB, path string, spec models.RoutingSpec, latency time.Duration) (*models.Picker, *models.Fleet) {
	t.Helper()
	store, err := sqlite.OpenLimits(context.Background(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var specs []models.ModelSpec
	for _, n := range []string{"premium", "cheap"} {
		specs = append(specs, models.ModelSpec{Name: n, ModelID: n, Client: sim.New(sim.Config{Latency: latency}),
			Price: models.Price{InputPerMTok: 1000, OutputPerMTok: 1000}})
	}
	f, err := models.NewFleet(models.FleetConfig{Models: specs, Spend: store, Usage: store, UsageFlush: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	r, err := models.CompileRouting(spec, f.Has)
	if err != nil {
		t.Fatal(err)
	}
	return models.NewPicker(f, r), f
}

// Three processes share one budget through the store: the model's spend stops at its cap,
// exceeded by less than one call's cost in all (each call's estimate, with max_tokens set, is
// at least its cost), and every answered call is in the usage table.
func TestBudgetHoldsAtTheCapAcrossProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fleet.db")
	const capUSD = 0.25
	spec := models.RoutingSpec{
		Routes:  map[string]string{"default": "premium"},
		Budgets: []models.Budget{{Model: "premium", DailyUSD: capUSD, DowngradeTo: "cheap"}},
	}
	type proc struct {
		p *models.Picker
		f *models.Fleet
	}
	var procs []proc
	for range 3 {
		p, f := fleetOnFile(t, path, spec, 2*time.Millisecond)
		procs = append(procs, proc{p, f})
	}
	const callsEach, workersEach = 40, 6
	var mu sync.Mutex
	spent := map[string]float64{}
	calls := map[string]int64{}
	maxCost := 0.0
	var wg sync.WaitGroup
	for i, pr := range procs {
		for w := range workersEach {
			wg.Go(func() {
				for n := range callsEach / workersEach * 2 {
					m, err := pr.p.Pick(&messages.Job{JobID: "j", Task: "summarize"})
					if err != nil {
						t.Error(err)
						return
					}
					req := request("a request whose answer costs about a cent, more or less, each time")
					req.Tenant = []string{"acme", "globex"}[(i+w+n)%2]
					req.Params.MaxTokens = 8
					resp, err := m.Client.Invoke(context.Background(), req)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					by := resp.Model
					if by == "" {
						by = m.Name
					}
					spent[by] += resp.Usage.CostUSD
					calls[by]++
					maxCost = max(maxCost, resp.Usage.CostUSD)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	t.Logf("premium: %d calls, $%.4f (cap $%.2f, one call at most $%.4f); cheap: %d calls", calls["premium"], spent["premium"], capUSD, maxCost, calls["cheap"])
	if spent["premium"] > capUSD+maxCost || spent["premium"] < capUSD-maxCost {
		t.Errorf("premium spent $%.4f across three processes, want the $%.2f cap within one call ($%.4f)", spent["premium"], capUSD, maxCost)
	}
	if calls["cheap"] == 0 {
		t.Error("no call was downgraded")
	}
	counted, err := procs[0].p.BudgetSpent(t.Context(), spec.Budgets[0])
	if err != nil || math.Abs(counted-spent["premium"]) > 1e-6 {
		t.Errorf("the budget counted $%v (%v), the calls cost $%v", counted, err, spent["premium"])
	}

	// Usage: every process writes its sums; the store holds every call once.
	for _, pr := range procs {
		if err := pr.f.FlushUsage(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	store, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	today := pipeline.UsageDay(time.Now())
	rows, err := store.Usage(t.Context(), pipeline.UsageFilter{From: today, To: today})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pipeline.GroupUsage(rows, []string{pipeline.UsageByModel}) {
		if r.Calls != calls[r.Model] || math.Abs(pipeline.NanoToUSD(r.CostNanoUSD)-spent[r.Model]) > 1e-6 || r.InputTokens == 0 {
			t.Errorf("usage of %s = %+v, want %d calls costing $%v", r.Model, r, calls[r.Model], spent[r.Model])
		}
	}
	if tenants := pipeline.GroupUsage(rows, []string{pipeline.UsageByTenant}); len(tenants) != 2 {
		t.Errorf("usage by tenant = %+v, want acme and globex", tenants)
	}
}

// Spend kept in the store survives a restart: a new process sees the budget spent.
func TestBudgetSpendSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fleet.db")
	spec := models.RoutingSpec{Routes: map[string]string{"default": "premium"}, Budgets: []models.Budget{{Tenant: "acme", DailyUSD: 0.01}}}
	p, f := fleetOnFile(t, path, spec, 0)
	if got := answeredBy(t, p, job("summarize", "x", ""), "acme"); got != "premium" {
		t.Fatalf("answered by %s", got)
	}
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	p2, _ := fleetOnFile(t, path, spec, 0)
	if spent, _, over, err := p2.TenantOverBudget(t.Context(), "acme"); !over || err != nil {
		t.Fatalf("after a restart: spent %v, over %v (%v); want the spend kept", spent, over, err)
	}
}

// BenchmarkSpend measures what spend costs a call (sim, no latency, one SQLite file): "plain"
// records nothing, "usage" sums usage in memory for the flush every second, "budget" also
// admits each call on a model budget kept in the store (a reservation, its release and the
// charge: three store writes a call).
func BenchmarkSpend(b *testing.B) {
	for _, tc := range []struct {
		name         string
		usage, spend bool
	}{{"plain", false, false}, {"usage", true, false}, {"budget", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			store, err := sqlite.OpenLimits(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "b.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			cfg := models.FleetConfig{Models: []models.ModelSpec{{Name: "m", ModelID: "m", Client: sim.New(sim.Config{}),
				Price: models.Price{InputPerMTok: 1, OutputPerMTok: 1}}}}
			spec := models.RoutingSpec{Routes: map[string]string{"default": "m"}}
			if tc.usage {
				cfg.Usage = store
			}
			if tc.spend {
				cfg.Spend = store
				spec.Budgets = []models.Budget{{Model: "m", DailyUSD: 1e9, DowngradeTo: "m"}}
			}
			f, err := models.NewFleet(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close(context.Background())
			r, err := models.CompileRouting(spec, f.Has)
			if err != nil {
				b.Fatal(err)
			}
			m, err := models.NewPicker(f, r).Pick(&messages.Job{JobID: "j", Task: "summarize"})
			if err != nil {
				b.Fatal(err)
			}
			req := request("how much does counting cost")
			req.Tenant = "acme"
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if _, err := m.Client.Invoke(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat)
		})
	}
}

// Batch records count as on-demand calls do: ChargeBatch puts their cost on every budget that
// counts the model and tenant, past the cap (a batch is not refused record by record), and
// their usage in the store; OverBudget then says the tenant's and the model's budgets are
// spent, and not another tenant's.
func TestChargeBatchCountsAgainstBudgetsAndUsage(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fleet.db")
	spec := models.RoutingSpec{
		Routes:  map[string]string{"default": "premium"},
		Budgets: []models.Budget{{Tenant: "acme", DailyUSD: 0.01}},
	}
	p, f := fleetOnFile(t, path, spec, 0)
	ctx := t.Context()
	u := messages.Usage{InputTokens: 1000, OutputTokens: 500, CostUSD: 0.006}
	p.ChargeBatch(ctx, "premium", "acme", "bulk", u)
	if over, err := p.OverBudget(ctx, "premium", "acme"); over || err != nil {
		t.Fatalf("after $0.006 of $0.01: over %v, %v", over, err)
	}
	p.ChargeBatch(ctx, "premium", "acme", "bulk", u)
	if over, err := p.OverBudget(ctx, "premium", "acme"); !over || err != nil {
		t.Errorf("after $0.012 of $0.01: over %v, %v; want over", over, err)
	}
	if spent, _, over, err := p.TenantOverBudget(ctx, "acme"); !over || err != nil || math.Abs(spent-0.012) > 1e-9 {
		t.Errorf("tenant budget: spent %v, over %v, %v; want $0.012, over", spent, over, err)
	}
	if over, err := p.OverBudget(ctx, "premium", "globex"); over || err != nil {
		t.Errorf("another tenant: over %v, %v", over, err)
	}
	if err := f.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.OpenLimits(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	today := pipeline.UsageDay(time.Now())
	rows, err := store.Usage(ctx, pipeline.UsageFilter{From: today, To: today})
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.UsageRow{Day: today, Tenant: "acme", Model: "premium", Task: "bulk", Calls: 2, InputTokens: 2000, OutputTokens: 1000, CostNanoUSD: 12_000_000}
	if len(rows) != 1 || rows[0] != want {
		t.Errorf("usage rows %+v, want %+v", rows, want)
	}
}
