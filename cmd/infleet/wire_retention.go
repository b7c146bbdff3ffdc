package main

import (
	"context"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
)

// startReaper starts this process's retention reaper, which deletes finished jobs older than
// store.retention and their results, when the job store can delete them itself (SQLite,
// PostgreSQL) and the retention is not 0s. serve and worker processes run one each: every
// fleet has workers, which already hold the store and the result store, while ingress
// processes scale with traffic and stay on the request path; concurrent reapers of one store
// are safe (see pipeline.Expirer). The returned stop ends the reaper and waits for its sweep
// to stop, before the stores close.
func (a *app) startReaper(ctx context.Context) (stop func(), err error) {
	log := a.log.With().Str("component", "retention").Logger()
	retention := a.cfg.Store.RetentionPeriod()
	expirer, ok := a.store.(pipeline.Expirer)
	switch {
	case !ok:
		log.Info().Str("store", a.cfg.Store.Kind).Dur("retention", a.cfg.Store.DynamoDB.Retention).
			Msg("retention: the job store expires finished jobs itself (DynamoDB TTL); their results are kept (give the result bucket a lifecycle rule)")
		return func() {}, nil
	case retention <= 0:
		log.Info().Msg("retention: store.retention is 0s; finished jobs and their results are kept forever")
		return func() {}, nil
	}
	r, err := ops.NewReaper(ops.ReaperConfig{
		Store:     expirer,
		Results:   a.results,
		Retention: retention,
		Interval:  a.cfg.Store.RetentionInterval,
		Metrics:   a.metrics,
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}
