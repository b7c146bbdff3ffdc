package main

import (
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
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
