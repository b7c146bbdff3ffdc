package models_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// BenchmarkLimitsPerCall is the cost of a model's limits per call through the Fleet, on a
// client that answers at once: no limits, the per-process limiter, and the fleet-wide one on a
// SQLite file (a bucket take for rpm and one for tpm, a lease and its release). Limits are set
// high enough never to wait, so the difference is the bookkeeping alone. The PostgreSQL cost
// of the same store calls is BenchmarkModelLimitsPerCall in adapters/postgres.
func BenchmarkLimitsPerCall(b *testing.B) {
	instant := clientFunc(func(context.Context, pipeline.ModelRequest) (pipeline.ModelResponse, error) {
		return pipeline.ModelResponse{Text: "ok"}, nil
	})
	high := models.Limits{MaxConcurrency: 1 << 20, RPM: 1 << 30, TPM: 1 << 30}
	store, err := sqlite.OpenLimits(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "limits.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	for _, tc := range []struct {
		name   string
		limits models.Limits
		shared pipeline.LimitStore
	}{
		{"none", models.Limits{}, nil},
		{"process", high, nil},
		{"fleet-sqlite", high, store},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := models.NewFleet(models.FleetConfig{Shared: tc.shared, Models: []models.ModelSpec{{
				Name: "m", ModelID: "m", Client: instant, Limits: tc.limits}}})
			if err != nil {
				b.Fatal(err)
			}
			c, req := f.Client("m"), request("what does a limit cost")
			for b.Loop() {
				if _, err := c.Invoke(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPacePerCall is the cost per call of a pace shared through a SQLite file, on a
// client that answers at once: unpaced (the row is read in the background every 200 ms, so
// calls pay nothing), and paced at a rate too high to wait for (each call takes from the
// fleet's bucket in the store: one write), beside the per-process pace, paced the same.
func BenchmarkPacePerCall(b *testing.B) {
	instant := clientFunc(func(context.Context, pipeline.ModelRequest) (pipeline.ModelResponse, error) {
		return pipeline.ModelResponse{Text: "ok"}, nil
	})
	for _, tc := range []struct {
		name          string
		shared, paced bool
	}{{"process-unpaced", false, false}, {"fleet-sqlite-unpaced", true, false}, {"fleet-sqlite-paced", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := models.FleetConfig{Models: []models.ModelSpec{{Name: "m", ModelID: "m", Client: instant}}}
			if tc.shared {
				store, err := sqlite.OpenLimits(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "pace.db")})
				if err != nil {
					b.Fatal(err)
				}
				defer store.Close()
				if tc.paced {
					now := time.Now()
					if _, err := store.SwapPace(context.Background(), "m", pipeline.Pace{Rate: 1e7, Base: 1e7, CutAt: now}); err != nil {
						b.Fatal(err)
					}
				}
				cfg.Pace = store
			}
			f, err := models.NewFleet(cfg)
			if err != nil {
				b.Fatal(err)
			}
			c, req := f.Client("m"), request("what does a shared pace cost")
			if _, err := c.Invoke(context.Background(), req); err != nil { // reads the row
				b.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			for b.Loop() {
				if _, err := c.Invoke(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
