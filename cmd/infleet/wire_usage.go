package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// usageCloseBound bounds the last usage write at shutdown.
const usageCloseBound = 5 * time.Second

// sharedStore opens, once per process, the store every process of the fleet shares for model
// limits, budgets' spend and usage (wire_auth.go openLimits: the PostgreSQL database, the
// DynamoDB table or the SQLite file of the job store), closed with the app.
func (a *app) sharedStore() (pipeline.LimitStore, error) {
	if a.shared != nil {
		return a.shared.LimitStore, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), limitStoreOpenBound)
	defer cancel()
	l, where, err := openLimits(ctx, a.cfg, a.aws, a.log)
	if err != nil {
		return nil, err
	}
	a.onClose(l.close)
	a.shared = &l
	a.log.Info().Str("limit_store", where).Msg("model limits, spend and usage are kept for the fleet")
	return l.LimitStore, nil
}

// usageStore returns the fleet's usage store for GET /v1/usage, or nil when the shared store
// keeps no usage.
func (a *app) usageStore() (pipeline.UsageStore, error) {
	l, err := a.sharedStore()
	if err != nil {
		return nil, fmt.Errorf("model usage for the fleet: %w", err)
	}
	u, _ := l.(pipeline.UsageStore)
	return u, nil
}

// tenantBudgets returns the check of tenant budgets that refuse new jobs at intake: the
// process's model router when it runs workers (it follows config reloads), else a view of the
// spend the fleet's workers keep in the shared store. Nil when no budget refuses jobs.
func (a *app) tenantBudgets() (func(ctx context.Context, tenant string) (spent, cap float64, over bool, err error), error) {
	if !slices.ContainsFunc(a.cfg.Budgets, func(b config.Budget) bool { return b.Tenant != "" && b.Model == "" && b.DowngradeTo == "" }) {
		return nil, nil
	}
	store, err := a.sharedStore()
	if err != nil {
		return nil, fmt.Errorf("budgets: read the fleet's spend: %w", err)
	}
	view := models.NewBudgetView(store, routingOf(a.cfg).Budgets)
	return func(ctx context.Context, tenant string) (float64, float64, bool, error) {
		if p := a.spend.Load(); p != nil {
			return p.TenantOverBudget(ctx, tenant)
		}
		return view.TenantOverBudget(ctx, tenant)
	}, nil
}
