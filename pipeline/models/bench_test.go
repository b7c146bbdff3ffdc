package models_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/openai"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// BenchmarkOverhead compares one call through the Fleet (breaker, budget, limits, timeout,
// stats) with the same OpenAI client called directly, side by side on one fmsim with no
// latency. The difference of the p50 and p99 columns is the decorator's cost.
func BenchmarkOverhead(b *testing.B) {
	sim := fmsim.New(fmsim.Config{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", ModelID: "m"})
	if err != nil {
		b.Fatal(err)
	}
	f, err := models.NewFleet(models.FleetConfig{Models: []models.ModelSpec{{Name: "m", ModelID: "m", Client: c,
		Limits: models.Limits{MaxConcurrency: 1000}}}})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		client pipeline.ModelClient
	}{{"direct", c}, {"fleet", f.Client("m")}} {
		b.Run(tc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			req := request("how long does this take")
			for b.Loop() {
				start := time.Now()
				if _, err := tc.client.Invoke(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat)
		})
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRetryAmplification reports model calls per completed call at 30% throttling.
func BenchmarkRetryAmplification(b *testing.B) {
	sim := fmsim.New(fmsim.Config{Faults: fmsim.Faults{ThrottleRate: 0.3, RetryAfter: time.Millisecond}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", ModelID: "m"})
	if err != nil {
		b.Fatal(err)
	}
	f, err := models.NewFleet(models.FleetConfig{Models: []models.ModelSpec{{Name: "m", ModelID: "m", Client: c}},
		Policy: models.Policy{BackoffBase: time.Microsecond, BackoffMax: time.Microsecond, MaxAttempts: 8, BudgetRatio: 1}})
	if err != nil {
		b.Fatal(err)
	}
	done := 0
	for b.Loop() {
		if _, err := f.Client("m").Invoke(context.Background(), request("x")); err == nil {
			done++
		}
	}
	b.ReportMetric(float64(sim.Stats().Calls)/float64(max(done, 1)), "calls/completed")
	b.ReportMetric(float64(b.N-done), "failed")
}

// BenchmarkFailover measures, with 20 callers in a loop, the time from the primary going down
// to every caller's last answer coming from the fallback, to the primary's circuit opening (no
// more calls reach it), and from its recovery to every caller being answered by the primary
// again (breaker: 5 failures, open for 100ms, then one probe).
func BenchmarkFailover(b *testing.B) {
	for b.Loop() {
		sim := fmsim.New(fmsim.Config{})
		srv := httptest.NewServer(sim)
		mk := func(id string) pipeline.ModelClient {
			c, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", ModelID: id})
			if err != nil {
				b.Fatal(err)
			}
			return c
		}
		f, err := models.NewFleet(models.FleetConfig{
			Models: []models.ModelSpec{
				{Name: "primary", ModelID: "primary", Client: mk("primary"), Fallbacks: []string{"backup"}},
				{Name: "backup", ModelID: "backup", Client: mk("backup")},
			},
			Policy: models.Policy{MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
				Breaker: models.BreakerConfig{Failures: 5, OpenFor: 100 * time.Millisecond}},
		})
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		last := map[int]string{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 20 {
			wg.Go(func() {
				for ctx.Err() == nil {
					resp, err := f.Client("primary").Invoke(ctx, request("x"))
					if err == nil {
						mu.Lock()
						last[w] = cmpStr(resp.Model, "primary")
						mu.Unlock()
					}
				}
			})
		}
		all := func(model string) bool {
			mu.Lock()
			defer mu.Unlock()
			if len(last) < 20 {
				return false
			}
			for _, m := range last {
				if m != model {
					return false
				}
			}
			return true
		}
		waitAll := func(model string) time.Duration {
			start := time.Now()
			for !all(model) {
				time.Sleep(100 * time.Microsecond)
			}
			return time.Since(start)
		}
		waitAll("primary")
		sim.SetFaults("primary", fmsim.Faults{Down: true})
		mu.Lock()
		clear(last)
		mu.Unlock()
		down := time.Now()
		toFallback := waitAll("backup")
		for s, _ := f.Snapshot("primary"); s.Circuit != models.StateOpen; s, _ = f.Snapshot("primary") {
			time.Sleep(100 * time.Microsecond)
		}
		toOpen := time.Since(down)
		sim.ClearFaults("primary")
		mu.Lock()
		clear(last)
		mu.Unlock()
		toPrimary := waitAll("primary")
		cancel()
		wg.Wait()
		srv.Close()
		b.ReportMetric(float64(toFallback.Microseconds())/1000, "ms-to-fallback")
		b.ReportMetric(float64(toOpen.Microseconds())/1000, "ms-to-open-circuit")
		b.ReportMetric(float64(toPrimary.Microseconds())/1000, "ms-back-to-primary")
	}
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
