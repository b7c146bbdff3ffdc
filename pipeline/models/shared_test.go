package models_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/pipeline/models"
)

// TestLimitsHoldForTheFleetThroughASharedStore: two Fleets on one SQLite file stand for two
// processes; 24 callers between them never get more than max_concurrency calls in flight at
// the model, nor more than its rpm.
func TestLimitsHoldForTheFleetThroughASharedStore(t *testing.T) {
	const maxConc, rpm = 3, 1200 // 20 calls a second, a burst of 20
	b := setup(t, map[string]fmsim.Faults{"m": {Latency: fmsim.Latency{P50: 20 * time.Millisecond}}}, fastPolicy())
	path := filepath.Join(t.TempDir(), "limits.db")
	var fleets []*models.Fleet
	for range 2 {
		store, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		f, err := models.NewFleet(models.FleetConfig{Policy: fastPolicy(), Shared: store, Models: []models.ModelSpec{{
			Name: "m", ModelID: "m", Client: b.client(t, "m"), Timeout: 2 * time.Second,
			Limits: models.Limits{MaxConcurrency: maxConc, RPM: rpm},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		fleets = append(fleets, f)
	}
	b.sim.ResetStats()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			for j := 0; time.Since(start) < 2*time.Second; j++ {
				if _, err := fleets[i%2].Client("m").Invoke(t.Context(), request("q "+itoa(i)+" "+itoa(j))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	st := b.sim.Stats()
	allowed := float64(rpm/60) + rpm/60*took.Seconds() // the burst and the refill
	t.Logf("%d calls in %s (allowed %.0f), at most %d in flight (limit %d), per second %v", st.Calls, took.Round(time.Millisecond), allowed, st.MaxInFlight, maxConc, st.PerSecond)
	if st.MaxInFlight > maxConc {
		t.Errorf("the model saw %d calls in flight, want at most max_concurrency %d for the two fleets together", st.MaxInFlight, maxConc)
	}
	if float64(st.Calls) > allowed {
		t.Errorf("the model saw %d calls in %s, want at most %.0f (rpm %d for the two fleets together)", st.Calls, took, allowed, rpm)
	}
	if float64(st.Calls) < 0.7*allowed {
		t.Errorf("the model saw %d calls in %s, want near %.0f: the shared limits must not starve the fleet", st.Calls, took, allowed)
	}
}
