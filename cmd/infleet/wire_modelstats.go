package main

import (
	"context"
	"fmt"
	"time"

	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// modelStatsReadWait bounds one read of the fleet's model figures for GET /v1/models.
const modelStatsReadWait = 5 * time.Second

// sharedStore opens, once per process, the store every process of the fleet shares (the job
// store's: wire_auth.go openLimits) for model limits and model figures; it is closed with the
// app.
func (a *app) sharedStore() (pipeline.LimitStore, error) {
	a.sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), limitStoreOpenBound)
		defer cancel()
		l, where, err := openLimits(ctx, a.cfg, a.aws, a.log)
		if err != nil {
			a.sharedErr = err
			return
		}
		a.onClose(l.close)
		a.shared, a.sharedWhere = l.LimitStore, where
	})
	return a.shared, a.sharedErr
}

// modelStats returns where every process's model figures meet, or nil (logged once) when the
// shared store cannot be opened or keeps none: GET /v1/models then shows this process's own.
func (a *app) modelStats() pipeline.ModelStatsStore {
	a.statsOnce.Do(func() {
		l, err := a.sharedStore()
		if err != nil {
			a.log.Warn().Err(err).Msg("model figures are this process's own: the fleet's shared store cannot be opened")
			return
		}
		s, ok := l.(pipeline.ModelStatsStore)
		if !ok {
			a.log.Warn().Str("store", a.sharedWhere).Msg("model figures are this process's own: the store keeps none")
			return
		}
		a.stats = s
	})
	return a.stats
}

// publishModelStats has fleet write its model figures to the shared store every second until
// the app closes (before the store closes).
func (a *app) publishModelStats(fleet *models.Fleet) {
	s := a.modelStats()
	if s == nil {
		return
	}
	a.fleet.Store(fleet)
	stop := fleet.PublishStats(models.StatsConfig{Store: s, Process: a.process, Interval: models.DefaultStatsInterval,
		Logger: a.log.With().Str("component", "model_stats").Logger()})
	a.onClose(func() error { stop(); return nil })
}

// modelReports is GET /v1/models: the configured models with the figures of every process of
// the fleet from the shared store; a process whose store keeps none shows its own figures
// (workers) or only the configuration (an ingress).
func (a *app) modelReports(ctx context.Context) handlers.ModelReports {
	p := a.spend.Load()
	r := a.fleetModelReports(ctx, p)
	a.fleetSpendToday(p, r.Models)
	return r
}

// fleetModelReports is modelReports without the fleet's spend.
func (a *app) fleetModelReports(ctx context.Context, p *models.Picker) handlers.ModelReports {
	base := configuredModels(a.cfg)
	if p != nil {
		base = p.Reports()
	}
	if s := a.modelStats(); s != nil {
		names := make([]string, len(base))
		for i, r := range base {
			names[i] = r.Name
		}
		now := time.Now()
		rctx, cancel := context.WithTimeout(ctx, modelStatsReadWait)
		figs, err := s.ModelStats(rctx, names, models.FleetStatsSince(now))
		cancel()
		if f := a.fleet.Load(); f != nil && err == nil {
			// This process's own calls show at once, not after its next write.
			figs = models.OverlayFigures(figs, f.Figures(a.process, now))
		}
		if err == nil {
			return handlers.ModelReports{Models: models.FleetReports(base, figs, now, models.StaleIntervals*models.DefaultStatsInterval),
				Live: true, Scope: models.ScopeFleet}
		}
		a.log.Warn().Err(fmt.Errorf("read the fleet's model figures: %w", err)).Msg("GET /v1/models shows this process's figures")
	}
	if p != nil {
		return handlers.ModelReports{Models: base, Live: true, Scope: models.ScopeProcess}
	}
	return handlers.ModelReports{Models: base}
}
