package main

import (
	"context"
	"fmt"

	"github.com/infleet/infleet/adapters/postgres"
	"github.com/infleet/infleet/pipeline/intake"
)

// openPostgres opens the PostgreSQL job store; its tables come from `infleet init`.
func (a *app) openPostgres(ctx context.Context) error {
	s, err := postgres.Open(ctx, postgres.Config{DSN: a.cfg.Store.Postgres.DSN, Logger: a.log})
	if err != nil {
		return fmt.Errorf("open the PostgreSQL job store (check store.postgres.dsn): %w", err)
	}
	a.onClose(func() error { s.Close(); return nil })
	a.store = s
	a.ready = append(a.ready, intake.NamedChecker{Name: "store", Checker: s})
	return nil
}
