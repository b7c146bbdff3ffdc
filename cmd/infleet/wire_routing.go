package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batch"
	"github.com/infleet/infleet/pipeline/models"
)

// configSource is where a process's config came from, for reloads and for the environment
// variables settings name: the --config path ("" with INFLEET_CONFIG in environ, or none) and
// the environment with the flag overrides (nil: the process's own).
type configSource struct {
	path    string
	environ []string
}

// file is the config file to follow: the --config path, else INFLEET_CONFIG; "" for none.
func (s configSource) file() string {
	if s.path != "" {
		return s.path
	}
	return lookup(s.environ, config.EnvConfig)
}

// getenv reads an environment variable as the process's config sees it.
func (s configSource) getenv(name string) string { return lookup(s.environ, name) }

// picker builds the resilient model fleet and its router from the config and, when the config
// came from a file, reloads models, routes, routing, resilience, budgets and prompts from it
// while the process runs.
func (a *app) picker() (pipeline.ModelPicker, error) {
	return a.pickerFrom(a.src.file(), a.src.environ)
}

// pickerFrom is picker with the config file to watch ("" for none) and the environment its
// reloads see.
func (a *app) pickerFrom(path string, environ []string) (*models.Picker, error) {
	specs, err := a.modelSpecs(a.cfg)
	if err != nil {
		return nil, err
	}
	shared, err := a.modelLimitStore()
	if err != nil {
		return nil, err
	}
	spend, err := a.sharedStore()
	if err != nil {
		return nil, fmt.Errorf("model spend and usage for the fleet: %w", err)
	}
	usage, _ := spend.(pipeline.UsageStore)
	pace := a.modelPaceStore(spend)
	fleet, err := models.NewFleet(models.FleetConfig{
		Models:       specs,
		Policy:       policyOf(a.cfg),
		Registerer:   a.reg,
		TenantLabels: a.cfg.Metrics.TenantLabels,
		Shared:       shared,
		Pace:         pace,
		Spend:        spend,
		Usage:        usage,
		Logger:       a.log.With().Str("component", "models").Logger(),
	})
	if err != nil {
		return nil, err
	}
	a.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), usageCloseBound)
		defer cancel()
		return fleet.Close(ctx)
	})
	routing, err := models.CompileRouting(routingOf(a.cfg), fleet.Has)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	p := models.NewPicker(fleet, routing)
	a.spend.Store(p)
	if uri := a.cfg.Routing.ReloadFrom; uri != "" {
		w, err := a.s3ConfigWatch(uri, environ, fleet, p)
		if err != nil {
			return nil, fmt.Errorf("routing.reload_from: %w", err)
		}
		stop := models.WatchFile(fleet, w)
		a.onClose(func() error { stop(); return nil })
	} else if path != "" {
		stop := models.WatchFile(fleet, models.WatchConfig{
			Path:     path,
			Interval: a.cfg.Routing.ReloadInterval,
			Apply:    func() error { return a.reloadModels(path, environ, fleet, p) },
			Logger:   a.log.With().Str("component", "reload").Logger(),
		})
		a.onClose(func() error { stop(); return nil })
	}
	a.publishModelStats(fleet)
	return p, nil
}

// modelLimitStore opens the store through which models' max_concurrency, rpm and tpm hold for
// the whole fleet (the job store's: wire_auth.go openLimits), or returns nil when they hold per
// process (resilience.limits_scope: process) or no model has a limit at start; limits first
// set by a reload then hold per process until a restart.
func (a *app) modelLimitStore() (pipeline.LimitStore, error) {
	if a.cfg.Resilience.LimitsScope == config.LimitsScopeProcess || !slices.ContainsFunc(a.cfg.Models, func(m config.Model) bool {
		return m.MaxConcurrency > 0 || m.RPM > 0 || m.TPM > 0
	}) {
		return nil, nil
	}
	l, err := a.sharedStore()
	if err != nil {
		return nil, fmt.Errorf("model limits for the fleet (or set resilience.limits_scope: process): %w", err)
	}
	_, leases := l.(pipeline.LeaseStore)
	a.log.Info().Str("limit_store", a.sharedWhere).Bool("shared_concurrency", leases).Msg("model limits hold for the fleet")
	return l, nil
}

// modelPaceStore returns the store through which throttled models are paced for the whole
// fleet (the shared store, when it keeps paces), or nil when they are paced per process
// (resilience.limits_scope: process, or a store without paces).
func (a *app) modelPaceStore(shared pipeline.LimitStore) pipeline.LimitStore {
	if a.cfg.Resilience.LimitsScope == config.LimitsScopeProcess {
		return nil
	}
	if _, ok := shared.(pipeline.PaceStore); !ok {
		a.log.Info().Str("store", a.sharedWhere).Msg("throttled models are paced per process: the shared store keeps no pace")
		return nil
	}
	a.log.Info().Str("pace_store", a.sharedWhere).Msg("throttled models are paced for the fleet")
	return shared
}

// limitStoreOpenBound bounds opening the model limit store at start.
const limitStoreOpenBound = 30 * time.Second

// reloadModels loads and validates the config file and applies its model settings; on any
// error nothing changes.
func (a *app) reloadModels(path string, environ []string, fleet *models.Fleet, p *models.Picker) error {
	cfg, err := config.Load(path, environ)
	if err != nil {
		return err
	}
	return a.applyModels(cfg, fleet, p)
}

// applyModels applies cfg's models, routes, routing, resilience, budgets and prompts; on any
// error nothing changes.
func (a *app) applyModels(cfg config.Config, fleet *models.Fleet, p *models.Picker) error {
	specs, err := a.modelSpecs(cfg)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	routing, err := models.CompileRouting(routingOf(cfg), func(n string) bool { return names[n] })
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	if err := fleet.Update(specs, policyOf(cfg)); err != nil {
		return err
	}
	p.Set(routing)
	return nil
}

// modelSpecs builds every configured model's provider client (wire_models.go) with its
// resilience settings.
func (a *app) modelSpecs(cfg config.Config) ([]models.ModelSpec, error) {
	var specs []models.ModelSpec
	var errs []error
	for i, m := range cfg.Models {
		model, err := a.newModel(context.Background(), cfg, m)
		if err != nil {
			errs = append(errs, fmt.Errorf("models[%d] (%s): %w", i, m.Name, err))
			continue
		}
		specs = append(specs, models.ModelSpec{
			Name:      model.Name,
			ModelID:   model.ModelID,
			Client:    model.Client,
			System:    genAISystem(m.Provider),
			Fallbacks: m.Fallbacks,
			Timeout:   m.Timeout,
			Limits:    models.Limits{MaxConcurrency: m.MaxConcurrency, RPM: m.RPM, TPM: m.TPM},
			Price:     models.Price{InputPerMTok: m.Price.Input, OutputPerMTok: m.Price.Output},
		})
	}
	return specs, errors.Join(errs...)
}

// policyOf maps the resilience settings.
func policyOf(cfg config.Config) models.Policy {
	r := cfg.Resilience
	return models.Policy{
		MaxAttempts:      r.MaxAttempts,
		BackoffBase:      r.Backoff.Initial,
		BackoffMax:       r.Backoff.Max,
		Deadline:         r.Deadline,
		MaxRetryAfter:    r.MaxRetryAfter,
		ThrottleFallback: r.ThrottleFallback,
		BudgetRatio:      r.RetryBudget.Ratio,
		BudgetReserve:    r.RetryBudget.Reserve,
		Breaker: models.BreakerConfig{
			Failures: r.Breaker.Failures,
			Ratio:    r.Breaker.Ratio,
			MinCalls: r.Breaker.MinCalls,
			Window:   r.Breaker.Window,
			OpenFor:  r.Breaker.OpenFor,
		},
		CacheTTL:        r.Cache.TTL,
		CacheEntries:    r.Cache.MaxEntries,
		DegradedMessage: r.DegradedMessage,
	}
}

// routingOf maps routes, routing, budgets and prompts.
func routingOf(cfg config.Config) models.RoutingSpec {
	spec := models.RoutingSpec{Routes: cfg.Routes}
	for _, r := range cfg.Routing.Rules {
		spec.Rules = append(spec.Rules, models.Rule{
			Name: r.Name, Task: r.Task, MinChars: r.MinChars, MaxChars: r.MaxChars, Language: r.Language,
			Keywords: r.Keywords, Regex: r.Regex, Metadata: r.Metadata, Model: r.Model,
		})
	}
	for _, s := range cfg.Routing.Splits {
		split := models.Split{Task: s.Task}
		for _, v := range s.Variants {
			split.Variants = append(split.Variants, models.Variant{Model: v.Model, Weight: v.Weight})
		}
		spec.Splits = append(spec.Splits, split)
	}
	for _, ad := range cfg.Routing.Adaptive {
		spec.Adaptive = append(spec.Adaptive, models.Adaptive{Task: ad.Task, Models: ad.Models, MaxErrorRate: ad.MaxErrorRate})
	}
	for _, b := range cfg.Budgets {
		spec.Budgets = append(spec.Budgets, models.Budget{Model: b.Model, Tenant: b.Tenant, DailyUSD: b.DailyUSD, DowngradeTo: b.DowngradeTo})
	}
	for _, pr := range cfg.Prompts {
		spec.Prompts = append(spec.Prompts, models.Prompt{Task: pr.Task, Version: pr.Version, System: pr.System, Template: pr.Template})
	}
	for _, b := range cfg.Batching {
		spec.Batching = append(spec.Batching, models.Batching{Task: b.Task,
			Rule: batch.Rule{MaxItems: b.MaxItems, MaxWait: b.MaxWait, MaxInputTokens: b.MaxInputTokens}})
	}
	return spec
}

// lookup returns the value of name in environ (os.Environ() form), or "".
func lookup(environ []string, name string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == name {
			return v
		}
	}
	if environ == nil {
		return os.Getenv(name)
	}
	return ""
}
