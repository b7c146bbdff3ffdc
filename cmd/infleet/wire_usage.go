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
