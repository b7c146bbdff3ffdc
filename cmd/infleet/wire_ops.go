package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/ops"
)

// operations builds the operator side when the transport can list its dead letters; nil
// otherwise (the operator routes are then not served). Its replays live in the fleet's shared
// store, and it continues, until ctx ends, those whose process died.
func (a *app) operations(ctx context.Context) handlers.Operations {
	box, ok := a.subscriber.(pipeline.DeadLetterBox)
	if !ok {
		return nil
	}
	op, err := ops.NewOperator(ops.OperatorConfig{
		Store:       a.store,
		Results:     a.results,
		Box:         box,
		Depth:       a.depth,
		Publisher:   a.publisher,
		Topics:      a.topics,
		Hub:         a.hub,
		Replays:     a.replayStore(),
		Process:     a.process,
		ReplayLease: a.cfg.Archive.ReplayLease,
		// A replay is kept as long as the archive it reads.
		ReplayRetention: a.cfg.Archive.Retention,
		Metrics:         a.metrics,
		Logger:          a.log.With().Str("component", "operator").Logger(),
	})
	if err != nil {
		a.log.Warn().Err(err).Msg("operator routes not served")
		return nil
	}
	// Closed before the stores and the publisher: its replays are handed back, not failed.
	a.onClose(op.Close)
	go op.ContinueReplays(ctx, 0)
	return op
}

// replayStore returns where the fleet's replays are kept, the shared store's, or nil (logged)
// when it cannot be opened or keeps none: replays are then this process's own.
func (a *app) replayStore() pipeline.ReplayStore {
	l, err := a.sharedStore()
	if err != nil {
		a.log.Warn().Err(err).Msg("replays are this process's own: the fleet's shared store cannot be opened")
		return nil
	}
	s, ok := l.(pipeline.ReplayStore)
	if !ok {
		a.log.Warn().Str("store", a.sharedWhere).Msg("replays are this process's own: the store keeps none")
		return nil
	}
	return s
}

// archive starts the archive of accepted job messages in the result store; it is flushed when
// the app closes. At durability fsync with local result files, the result store fsyncs every
// write (openResults), so an archive write is on disk before a worker acks.
func (a *app) archive() *ops.Archive {
	ar, err := ops.NewArchive(ops.ArchiveConfig{Store: a.results, Retention: a.cfg.Archive.Retention,
		Background: !a.cfg.Archive.BeforeAck(), Window: a.archiveWindow(), MaxBatch: a.cfg.Archive.BatchMax,
		Logger: a.log.With().Str("component", "archive").Logger()})
	if err != nil {
		a.log.Warn().Err(err).Msg("job messages are not archived; replay will find nothing")
		return nil
	}
	a.onClose(ar.Close)
	return ar
}

// archiveWindow is the archive's batch window: archive.batch_window before an ack, the
// archive's own default (about a second) in the background.
func (a *app) archiveWindow() time.Duration {
	if a.cfg.Archive.BeforeAck() {
		return a.cfg.Archive.BatchWindow
	}
	return 0
}

// spendReadBound bounds the read of the fleet's spend for a model report.
const spendReadBound = 2 * time.Second

// fleetSpendToday sets each report's SpendTodayUSD to the fleet's spend today (UTC) from the
// shared usage store, after adding p's latest usage (p nil: an ingress); when the store cannot
// be read the reports keep this process's figures.
func (a *app) fleetSpendToday(p *models.Picker, reports []models.Report) {
	if a.shared == nil {
		return
	}
	store, ok := a.shared.(pipeline.UsageStore)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), spendReadBound)
	defer cancel()
	if p != nil {
		// This process's latest calls first, so that the figure includes them.
		if err := p.FlushUsage(ctx); err != nil {
			a.log.Warn().Err(err).Msg("could not write model usage to the store")
		}
	}
	today := pipeline.UsageDay(time.Now())
	rows, err := store.Usage(ctx, pipeline.UsageFilter{From: today, To: today})
	if err != nil {
		a.log.Warn().Err(err).Msg("could not read the fleet's spend; the models report shows this process's")
		return
	}
	spend := map[string]float64{}
	for _, r := range pipeline.GroupUsage(rows, []string{pipeline.UsageByModel}) {
		spend[r.Model] = pipeline.NanoToUSD(r.CostNanoUSD)
	}
	for i := range reports {
		reports[i].SpendTodayUSD = spend[reports[i].Name]
	}
}

// configuredModels reports cfg's models as configured: limits, fallbacks and model budgets,
// circuits closed and no figures.
func configuredModels(cfg config.Config) []models.Report {
	budgets := map[string]float64{}
	for _, b := range cfg.Budgets {
		if b.Model != "" && b.Tenant == "" {
			budgets[b.Model] = b.DailyUSD
		}
	}
	out := make([]models.Report, 0, len(cfg.Models))
	for _, m := range cfg.Models {
		out = append(out, models.Report{Name: m.Name, ModelID: m.ModelID, Fallbacks: m.Fallbacks,
			Circuit: models.CircuitName(models.StateClosed), BudgetUSD: budgets[m.Name],
			Limits: models.Limits{MaxConcurrency: m.MaxConcurrency, RPM: m.RPM, TPM: m.TPM}})
	}
	slices.SortFunc(out, func(x, y models.Report) int { return strings.Compare(x.Name, y.Name) })
	return out
}
