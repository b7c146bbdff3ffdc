package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// ErrCodeBudget is the error code of a job refused because its tenant's daily budget is spent
// and the budget has nowhere to downgrade to.
const ErrCodeBudget = "budget_exceeded"

// spendWriteBound bounds a ledger write made after the call that caused it, which must not be
// lost to the job's context ending.
const spendWriteBound = 5 * time.Second

// quotaStore is what the ledger needs of a pipeline.LimitStore.
type quotaStore interface {
	UseQuota(ctx context.Context, key string, limit, cost int64) (pipeline.QuotaDecision, error)
}

// ledger keeps the day's spend that budgets count, in billionths of a dollar, as quota counters
// of a store every process shares (or in memory, per process). Only spend that a budget counts
// is kept: a counter per budget key and UTC day. A call is admitted while its budget's counter
// is below the cap and then holds its estimated cost on the counter until it ends (a
// reservation), so concurrent calls of any process see each other; the actual cost of every
// answered attempt is charged, unconditionally, by the fleet. Safe for concurrent use.
type ledger struct {
	store   quotaStore
	budgets atomic.Pointer[[]Budget]
	now     func() time.Time
	log     *zerolog.Logger
}

func newLedger(store quotaStore, log *zerolog.Logger) *ledger {
	if store == nil {
		store = &memoryQuota{}
	}
	l := &ledger{store: store, now: time.Now, log: log}
	l.budgets.Store(&[]Budget{})
	return l
}

// setBudgets replaces the budgets the ledger counts spend for.
func (l *ledger) setBudgets(b []Budget) { l.budgets.Store(&b) }

// applies reports whether b counts the spend of a call to model for tenant.
func (b Budget) applies(model, tenant string) bool {
	if b.DailyUSD <= 0 {
		return false
	}
	if b.Tenant == "" {
		return b.Model == model
	}
	return b.Tenant == tenant && (b.Model == "" || b.Model == model)
}

// key names b's counter on day.
func (b Budget) key(day string) string {
	switch {
	case b.Tenant == "":
		return "spend:model:" + b.Model + ":" + day
	case b.Model == "":
		return "spend:tenant:" + b.Tenant + ":" + day
	}
	return "spend:tenant:" + b.Tenant + ":model:" + b.Model + ":" + day
}

// counting returns the budgets that count a call to model for tenant, one per counter.
func (l *ledger) counting(model, tenant string) []Budget {
	var out []Budget
	for _, b := range *l.budgets.Load() {
		if b.applies(model, tenant) && !containsKey(out, b) {
			out = append(out, b)
		}
	}
	return out
}

func containsKey(bs []Budget, b Budget) bool {
	for _, o := range bs {
		if o.key("") == b.key("") {
			return true
		}
	}
	return false
}

// charge adds cost to every counter that counts a call to model for tenant, whatever the caps.
func (l *ledger) charge(ctx context.Context, model, tenant string, cost int64) {
	bs := l.counting(model, tenant)
	if len(bs) == 0 || cost == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), spendWriteBound)
	defer cancel()
	day := pipeline.UsageDay(l.now())
	for _, b := range bs {
		if _, err := l.store.UseQuota(ctx, b.key(day), math.MaxInt64, cost); err != nil {
			l.log.Warn().Err(err).Str("model", model).Msg("could not count a call's spend against its budget; the budget sees less than was spent")
		}
	}
}

// reservation is the estimated cost a call holds on its budgets' counters while it runs.
type reservation struct {
	day  string
	keys []string
	cost int64
}

// reserve admits a call to model for tenant on every budget that counts it and is not in
// exempt (budgets that already downgraded the call): each counter must be below its cap, and
// then holds cost until release. It returns the first budget that refuses (the counters
// reserved so far are given back) with its counter, or the reservation. A store that cannot
// be reached admits the call, with a warning: budgets are then only as exact as the store.
func (l *ledger) reserve(ctx context.Context, model, tenant string, cost int64, exempt func(Budget) bool) (*reservation, *Budget, int64) {
	res := &reservation{day: pipeline.UsageDay(l.now()), cost: max(cost, 0)}
	for _, b := range l.counting(model, tenant) {
		if exempt(b) {
			continue
		}
		key, capNano := b.key(res.day), pipeline.USDToNano(b.DailyUSD)
		// Admitted while the counter is below the cap: used + cost <= cap - 1 + cost.
		d, err := l.store.UseQuota(ctx, key, capNano-1+res.cost, res.cost)
		if err != nil {
			l.log.Warn().Err(err).Str("model", model).Msg("could not check a budget; the call goes ahead")
			continue
		}
		if !d.Allowed {
			l.release(ctx, res)
			return nil, &b, d.Used
		}
		res.keys = append(res.keys, key)
	}
	return res, nil, 0
}

// release gives a reservation's estimate back.
func (l *ledger) release(ctx context.Context, res *reservation) {
	if res == nil || res.cost == 0 || len(res.keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), spendWriteBound)
	defer cancel()
	for _, key := range res.keys {
		if _, err := l.store.UseQuota(ctx, key, math.MaxInt64, -res.cost); err != nil {
			l.log.Warn().Err(err).Msg("could not give back a call's reserved spend; its budget counts it until the day ends")
		}
	}
	res.keys = nil
}

// spent returns b's counter today, in billionths of a dollar.
func (l *ledger) spent(ctx context.Context, b Budget) (int64, error) {
	d, err := l.store.UseQuota(ctx, b.key(pipeline.UsageDay(l.now())), math.MaxInt64, 0)
	return d.Used, err
}

// tenantOverBudget reports whether a tenant budget without downgrade_to is spent, with its
// spend and cap in dollars.
func (l *ledger) tenantOverBudget(ctx context.Context, tenant string) (spent, capUSD float64, over bool, err error) {
	if tenant == "" {
		return 0, 0, false, nil
	}
	for _, b := range *l.budgets.Load() {
		if b.Tenant != tenant || b.Model != "" || b.DowngradeTo != "" || b.DailyUSD <= 0 {
			continue
		}
		used, err := l.spent(ctx, b)
		if err != nil {
			return 0, 0, false, err
		}
		spent = pipeline.NanoToUSD(used)
		if used >= pipeline.USDToNano(b.DailyUSD) {
			return spent, b.DailyUSD, true, nil
		}
	}
	return spent, 0, false, nil
}

// estimateCost is a call's cost before it is made: its estimated input and its max_tokens (256
// when unset) of output, at price.
func estimateCost(price Price, req pipeline.ModelRequest) int64 {
	words := countWords(req.System)
	for _, m := range req.Messages {
		words += countWords(m.Content)
	}
	out := req.Params.MaxTokens
	if out <= 0 {
		out = defaultOutputEstimate
	}
	return pipeline.USDToNano(price.Cost((words*4+2)/3, out))
}

// defaultOutputEstimate is the output a call without max_tokens is assumed to produce.
const defaultOutputEstimate = 256

// BudgetError is the error of a call refused by a tenant budget that has no downgrade_to: a
// permanent failure of the job, with code ErrCodeBudget.
func budgetError(tenant string, spent int64, b Budget) error {
	return pipeline.Permanent(ErrCodeBudget, fmt.Errorf(
		"tenant %s has spent $%.4f of its $%.2f daily budget; the job was not run (resubmit after 00:00 UTC, or raise the budget's daily_usd)",
		tenant, pipeline.NanoToUSD(spent), b.DailyUSD))
}

// memoryQuota is a per-process quotaStore: the ledger of a fleet without a shared store. It
// forgets the counters of past days. Safe for concurrent use.
type memoryQuota struct {
	mu   sync.Mutex
	day  string
	used map[string]int64
}

func (m *memoryQuota) UseQuota(_ context.Context, key string, limit, cost int64) (pipeline.QuotaDecision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if day := key[strings.LastIndexByte(key, ':')+1:]; day != m.day {
		if day < m.day {
			return pipeline.QuotaDecision{}, nil
		}
		m.day, m.used = day, map[string]int64{}
	}
	if cost > limit {
		return pipeline.QuotaDecision{Used: m.used[key]}, nil
	}
	u := m.used[key]
	if cost < 0 || u+cost <= limit {
		m.used[key] = max(0, u+cost)
		return pipeline.QuotaDecision{Allowed: true, Used: m.used[key]}, nil
	}
	return pipeline.QuotaDecision{Used: u}, nil
}

// budgetClient admits a call on its budgets before it is made: while a budget that counts it
// is spent, the call moves to the budget's downgrade_to (and the budgets of that model), or,
// when the budget has none, fails with ErrCodeBudget.
type budgetClient struct {
	fleet *Fleet
	name  string
	opts  CallOptions
}

func (c *budgetClient) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	l := c.fleet.ledger
	name := c.name
	var moved []Budget
	exempt := func(b Budget) bool { return containsKey(moved, b) }
	var res *reservation
	for range len(*l.budgets.Load()) + 1 {
		price := Price{}
		if ep := c.fleet.state.Load().endpoints[name]; ep != nil {
			price = ep.spec.Price
		}
		r, refused, spent := l.reserve(ctx, name, req.Tenant, estimateCost(price, req), exempt)
		if refused == nil {
			res = r
			break
		}
		if refused.DowngradeTo == "" {
			return pipeline.ModelResponse{}, budgetError(req.Tenant, spent, *refused)
		}
		moved = append(moved, *refused)
		name = refused.DowngradeTo
	}
	defer l.release(ctx, res)
	if name == c.name {
		return c.fleet.ClientWith(name, c.opts).Invoke(ctx, req)
	}
	c.fleet.metrics.routes.WithLabelValues(DecidedByBudget, name).Inc()
	resp, err := c.fleet.ClientWith(name, c.opts).Invoke(ctx, req)
	if err == nil && resp.Model == "" {
		resp.Model = name
	}
	return resp, err
}

// usageOf is the usage row of one answered call.
func usageOf(now time.Time, model string, req pipeline.ModelRequest, u messages.Usage, cost int64) pipeline.UsageRow {
	return pipeline.UsageRow{Day: pipeline.UsageDay(now), Tenant: req.Tenant, Model: model, Task: req.Task,
		Calls: 1, InputTokens: int64(u.InputTokens), OutputTokens: int64(u.OutputTokens), CostNanoUSD: cost}
}

// BudgetView answers, in a process that calls no model (an ingress), whether a tenant's budget
// is spent, from the spend the fleet's workers keep in the store. Safe for concurrent use.
type BudgetView struct{ l *ledger }

// NewBudgetView returns a view of budgets over store, where the workers' Fleets keep their
// spend (FleetConfig.Spend).
func NewBudgetView(store pipeline.LimitStore, budgets []Budget) *BudgetView {
	nop := zerolog.Nop()
	l := newLedger(store, &nop)
	l.setBudgets(budgets)
	return &BudgetView{l: l}
}

// TenantOverBudget is Picker.TenantOverBudget for the view's budgets.
func (v *BudgetView) TenantOverBudget(ctx context.Context, tenant string) (spent, cap float64, over bool, err error) {
	return v.l.tenantOverBudget(ctx, tenant)
}

// ChargeBatch counts an answer the fleet did not call for — a batch inference output record,
// already billed by the provider — as an answered call to model for tenant and task: its cost
// (u.CostUSD, at the batch price) goes onto every budget that counts model for tenant, whatever
// the caps (a batch cannot be refused record by record), and its tokens and cost into the usage
// store and the cost metrics. Not idempotent: call it once per record. Safe for concurrent use.
func (p *Picker) ChargeBatch(ctx context.Context, model, tenant, task string, u messages.Usage) {
	f := p.fleet
	nano := pipeline.USDToNano(u.CostUSD)
	f.ledger.charge(ctx, model, tenant, nano)
	if f.usage != nil {
		f.usage.add(usageOf(time.Now(), model, pipeline.ModelRequest{Tenant: tenant, Task: task}, u, nano))
	}
	f.metrics.cost.WithLabelValues(model).Add(u.CostUSD)
	if tenant != "" {
		t := f.metrics.tenant(tenant)
		f.metrics.tenantCost.WithLabelValues(t, model).Add(u.CostUSD)
		f.metrics.tenantTokens.WithLabelValues(t, model, "input").Add(float64(u.InputTokens))
		f.metrics.tenantTokens.WithLabelValues(t, model, "output").Add(float64(u.OutputTokens))
	}
}

// OverBudget reports whether a budget that counts calls to model for tenant has reached its
// cap today (UTC), counting the estimates of calls in flight: a job of such a tenant or model
// is kept out of new batch inference batches and called on demand, where the budget refuses
// or downgrades it. A budget whose spend cannot be read does not hold the job back. Safe for
// concurrent use.
func (p *Picker) OverBudget(ctx context.Context, model, tenant string) (bool, error) {
	l := p.fleet.ledger
	var errs []error
	for _, b := range l.counting(model, tenant) {
		used, err := l.spent(ctx, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if used >= pipeline.USDToNano(b.DailyUSD) {
			return true, nil
		}
	}
	return false, errors.Join(errs...)
}
