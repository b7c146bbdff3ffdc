package main

import (
	"slices"
	"strings"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/ops"
)

// operations builds the operator side when the transport can list its dead letters; nil
// otherwise (the operator routes are then not served).
func (a *app) operations() handlers.Operations {
	box, ok := a.subscriber.(pipeline.DeadLetterBox)
	if !ok {
		return nil
	}
	op, err := ops.NewOperator(ops.OperatorConfig{
		Store:     a.store,
		Results:   a.results,
		Box:       box,
		Depth:     a.depth,
		Publisher: a.publisher,
		Topics:    a.topics,
		Hub:       a.hub,
		Metrics:   a.metrics,
		Logger:    a.log.With().Str("component", "operator").Logger(),
	})
	if err != nil {
		a.log.Warn().Err(err).Msg("operator routes not served")
		return nil
	}
	return op
}

// archive starts the archive of accepted job messages in the result store; it is flushed when
// the app closes.
func (a *app) archive() *ops.Archive {
	ar, err := ops.NewArchive(ops.ArchiveConfig{Store: a.results, Retention: a.cfg.Archive.Retention, Logger: a.log.With().Str("component", "archive").Logger()})
	if err != nil {
		a.log.Warn().Err(err).Msg("job messages are not archived; replay will find nothing")
		return nil
	}
	a.onClose(ar.Close)
	return ar
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
