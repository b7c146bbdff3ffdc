package main

import (
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
)

// operations builds the operator side when the transport can list its dead letters; nil
// otherwise (the operator routes are then not served).
func (a *app) operations() handlers.Operations {
	box, ok := a.subscriber.(pipeline.DeadLetterBox)
	if !ok {
		return nil
	}
	op, err := pipeline.NewOperator(pipeline.OperatorConfig{
		Store:     a.store,
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
