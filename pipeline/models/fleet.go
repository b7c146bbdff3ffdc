// Package models makes model calls survive throttling, timeouts and outages, and sends each job
// to the right model. It is provider-neutral: it decorates any pipeline.ModelClient.
//
// A Fleet holds one endpoint per configured model: its client, a circuit breaker, a retry
// budget, concurrency and rate limits, a timeout and live latency, error and spend figures. Its
// Client(name) is a pipeline.ModelClient that calls the model with retries (exponential backoff
// with full jitter, an attempt cap and a deadline, Retry-After honoured, within the budget),
// walks the model's fallback chain when the model cannot answer, and finally degrades to a
// configured message. A Picker (picker.go) routes jobs to models by static routes, content
// rules, live metrics, spend budgets and weighted splits. Both reload without a restart
// (Update); breakers, budgets and figures of models that stay configured carry over.
package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/pipeline"
)

// Retry defaults.
const (
	DefaultMaxAttempts   = 4
	DefaultBackoffBase   = 100 * time.Millisecond
	DefaultBackoffMax    = 5 * time.Second
	DefaultCallDeadline  = 60 * time.Second
	DefaultMaxRetryAfter = 30 * time.Second
	DefaultModelTimeout  = 60 * time.Second
)

// StopDegraded is the StopReason of a degraded answer: no model could answer and the fleet
// returned its configured degradation message.
const StopDegraded = "degraded"

// ModelSpec is one configured model.
type ModelSpec struct {
	// Name is what routes, fallbacks and jobs call the model. Required, unique.
	Name string
	// ModelID is the provider's model id, sent in every request to this model.
	ModelID string
	// Client reaches the model. Required.
	Client pipeline.ModelClient
	// System names the provider in traces, as OpenTelemetry's GenAI conventions spell it
	// (gen_ai.system: "aws.bedrock", "openai"...). Default "_OTHER".
	System string
	// Fallbacks are model names tried in order when this model cannot answer (retries spent,
	// circuit open, context window too small, access denied).
	Fallbacks []string
	// Timeout bounds one attempt. Default 60s.
	Timeout time.Duration
	// Limits bound the load on the model: of this process, or of the whole fleet when the
	// Fleet has a shared limit store (FleetConfig.Shared).
	Limits Limits
	// Price is the model's price, for cost figures and budgets.
	Price Price
}

// Price is a model's price in US dollars per million tokens.
type Price struct {
	InputPerMTok  float64
	OutputPerMTok float64
}

// Cost returns the price of usage.
func (p Price) Cost(in, out int) float64 {
	return (float64(in)*p.InputPerMTok + float64(out)*p.OutputPerMTok) / 1e6
}

// Policy is the resilience policy every model of a Fleet shares. The zero value uses the
// defaults.
type Policy struct {
	// MaxAttempts per model call, the first included. Default 4.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the wait between attempts: a random duration in
	// [0, min(BackoffMax, BackoffBase*2^(n-1))] (full jitter), or the model's Retry-After when
	// longer. Defaults 100ms and 5s.
	BackoffBase, BackoffMax time.Duration
	// Deadline bounds one model's attempts together, waits included. Default 60s.
	Deadline time.Duration
	// MaxRetryAfter is the longest Retry-After waited for within a call; a longer one ends the
	// call at once (the job waits in the queue for it, or, with ThrottleFallback, moves to the
	// fallback). Default 30s.
	MaxRetryAfter time.Duration
	// ThrottleFallback moves a call to the model's fallback when the model keeps throttling it.
	// Default false: throttling is the provider asking to slow down, so the model is paced
	// down (see pacer) and a call still throttled at its last attempt or deadline fails as
	// throttled, with a Retry-After, for the job to wait in the queue and come back to the
	// same model. Throttled retries never spend the retry budget. Outages (5xx, timeouts,
	// hangs, an open circuit) move to the fallback either way.
	ThrottleFallback bool
	// BudgetRatio is the share of calls that may be retried, per model (a token bucket).
	// Default 0.2.
	BudgetRatio float64
	// BudgetReserve is the retries allowed beyond the ratio, for quiet periods. Default 10.
	BudgetReserve int
	// Breaker shapes every model's circuit breaker.
	Breaker BreakerConfig
	// CacheTTL turns on the exact-match response cache. Default 0: off.
	CacheTTL time.Duration
	// CacheEntries bounds the cache. Default 10000.
	CacheEntries int
	// DegradedMessage, when set, is answered (StopReason "degraded", Degraded true) when no
	// model of the chain could answer; when empty the last error is returned.
	DegradedMessage string
}

// FleetConfig wires a Fleet.
type FleetConfig struct {
	Models []ModelSpec
	Policy Policy
	// Registerer receives the fleet's collectors; nil registers none.
	Registerer prometheus.Registerer
	// TenantLabels labels infleet_tenant_cost_usd_total and infleet_tenant_tokens_total with
	// each job's tenant. Default false: they are recorded under tenant AllTenants, summed over
	// tenants, so the metrics name no tenant. Budgets see each tenant's spend either way.
	TenantLabels bool
	// Shared, when set, makes every model's Limits hold for the whole fleet: rpm and tpm are
	// token buckets in the store, max_concurrency a count of expiring leases when the store is
	// also a pipeline.LeaseStore (else it stays per process). Every process pointed at the
	// same store shares them. Default nil: limits hold per process.
	Shared pipeline.LimitStore
	// Pace, when set and also a pipeline.PaceStore, shares each throttled model's pace with
	// every process pointed at the same store: one rate per model for the fleet, cut once per
	// back-off window whichever process saw the throttling and raised as the fleet's calls
	// succeed, split among the processes by a token bucket of the store (see fleetPace).
	// Default nil: each process paces its models on its own.
	Pace pipeline.LimitStore
	// Spend, when set, keeps the spend that budgets count (per budget and UTC day) in the
	// store: every process pointed at it sees the same spend, which survives restarts, and
	// a call holds its estimated cost there while it runs, so that budgets hold for the
	// fleet. Default nil: spend is kept per process, in memory.
	Spend pipeline.LimitStore
	// Usage, when set, receives the usage of every answered call (calls, tokens, cost) per
	// UTC day, tenant, model and task, summed in memory and added every UsageFlush. Close
	// writes what is left. Default nil: usage is not recorded.
	Usage pipeline.UsageStore
	// UsageFlush is how often usage is written to Usage. Default 1s.
	UsageFlush time.Duration
	Logger     zerolog.Logger
}

// Fleet holds the configured models and calls them resiliently. It is safe for concurrent use;
// Update swaps the configuration atomically while calls run.
type Fleet struct {
	metrics *fleetMetrics
	log     zerolog.Logger
	state   atomic.Pointer[fleetState]
	ledger  *ledger
	usage   *usageRecorder // nil without a UsageStore

	shared       pipeline.LimitStore
	holder       string // names this process's leases
	leaseSeq     atomic.Uint64
	sharedWarned sync.Once

	paceStore  pipeline.PaceStore // nil: pace per process
	paceBucket pipeline.LimitStore
	paceWarned sync.Once
}

type fleetState struct {
	policy    Policy
	endpoints map[string]*endpoint
	cache     *Cache
}

// endpoint is one model: its spec and the health it shares with every job.
type endpoint struct {
	spec   ModelSpec
	limits callLimiter
	health *health
	// ok holds the series a successful attempt records on, made on the first (okSeries).
	ok atomic.Pointer[okSeries]
}

// okSeries are the children of the fleet's vectors that every successful attempt of one
// model records on, kept so that a call does not hash their labels again.
type okSeries struct {
	attempts, cost prometheus.Counter
	pace           prometheus.Gauge
}

// okSeries returns ep's series of a successful attempt, made on first use (racing callers
// make the same children).
func (ep *endpoint) okSeries(m *fleetMetrics) *okSeries {
	if s := ep.ok.Load(); s != nil {
		return s
	}
	name := ep.spec.Name
	s := &okSeries{attempts: m.attempts.WithLabelValues(name, "ok"), cost: m.cost.WithLabelValues(name), pace: m.pace.WithLabelValues(name)}
	ep.ok.Store(s)
	return s
}

// health is the part of an endpoint that survives reloads.
type health struct {
	breaker *Breaker
	budget  *RetryBudget
	stats   *stats
	pace    *pacer
}

// NewFleet checks cfg and returns a Fleet.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	f := &Fleet{metrics: newFleetMetrics(cfg.Registerer, cfg.TenantLabels), log: cfg.Logger,
		shared: cfg.Shared, holder: processID()}
	if ps, ok := cfg.Pace.(pipeline.PaceStore); ok {
		f.paceStore, f.paceBucket = ps, cfg.Pace
	}
	var spend quotaStore
	if cfg.Spend != nil {
		spend = cfg.Spend
	}
	f.ledger = newLedger(spend, &f.log)
	if err := f.Update(cfg.Models, cfg.Policy); err != nil {
		return nil, err
	}
	if cfg.Usage != nil {
		f.usage = newUsageRecorder(cfg.Usage, cfg.UsageFlush, &f.log)
	}
	return f, nil
}

// FlushUsage writes the usage gathered so far to the FleetConfig.Usage store now, rather than
// at the next flush. Safe for concurrent use; a no-op without a store.
func (f *Fleet) FlushUsage(ctx context.Context) error {
	if f.usage == nil {
		return nil
	}
	return f.usage.flush(ctx)
}

// Close stops the periodic usage writes and writes what is left, within ctx. Calls made after
// Close still count but their usage is not written. Safe to call more than once.
func (f *Fleet) Close(ctx context.Context) error {
	if f.usage == nil {
		return nil
	}
	return f.usage.close(ctx)
}

// Update replaces the models and policy. Models that keep their name keep their breaker,
// retry budget and live figures. On error nothing changes.
func (f *Fleet) Update(models []ModelSpec, p Policy) error {
	old := f.state.Load()
	st := &fleetState{policy: p, endpoints: map[string]*endpoint{}}
	var errs []error
	for _, m := range models {
		switch {
		case m.Name == "":
			errs = append(errs, errors.New("a model has no name"))
			continue
		case m.Client == nil:
			errs = append(errs, fmt.Errorf("model %s has no client", m.Name))
			continue
		case st.endpoints[m.Name] != nil:
			errs = append(errs, fmt.Errorf("model %s is configured twice; names must be unique", m.Name))
			continue
		}
		ep := &endpoint{spec: m, limits: f.newCallLimiter(m)}
		if old != nil && old.endpoints[m.Name] != nil && old.policy.Breaker == p.Breaker {
			ep.health = old.endpoints[m.Name].health
		} else {
			name := m.Name
			ep.health = &health{
				breaker: NewBreaker(p.Breaker, func(s int) { f.metrics.circuit.WithLabelValues(name).Set(float64(s)) }),
				budget:  NewRetryBudget(p.BudgetRatio, p.BudgetReserve),
				stats:   newStats(),
				pace:    f.newPacer(name),
			}
			f.metrics.circuit.WithLabelValues(name).Set(StateClosed)
		}
		st.endpoints[m.Name] = ep
	}
	for _, ep := range st.endpoints {
		for _, fb := range ep.spec.Fallbacks {
			if st.endpoints[fb] == nil {
				errs = append(errs, fmt.Errorf("model %s: fallback %s is not a configured model", ep.spec.Name, fb))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if old != nil && old.cache != nil && old.policy.CacheTTL == p.CacheTTL && old.policy.CacheEntries == p.CacheEntries {
		st.cache = old.cache
	} else {
		st.cache = NewCache(p.CacheTTL, p.CacheEntries)
	}
	f.state.Store(st)
	return nil
}

// Has reports whether a model of that name is configured.
func (f *Fleet) Has(name string) bool { return f.state.Load().endpoints[name] != nil }

// Names returns the configured model names, sorted.
func (f *Fleet) Names() []string {
	st := f.state.Load()
	names := make([]string, 0, len(st.endpoints))
	for n := range st.endpoints {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ModelID returns the provider model id of the named model.
func (f *Fleet) ModelID(name string) string {
	if ep := f.state.Load().endpoints[name]; ep != nil {
		return ep.spec.ModelID
	}
	return ""
}

// Snapshot returns the live figures of the named model: p95 latency and error rate over the
// recent calls, spend today (UTC), and the circuit state.
func (f *Fleet) Snapshot(name string) (Snapshot, bool) {
	ep := f.state.Load().endpoints[name]
	if ep == nil {
		return Snapshot{}, false
	}
	s := ep.health.stats.snapshot()
	s.Circuit = ep.health.breaker.State()
	return s, true
}

// CallOptions change one call.
type CallOptions struct {
	// NoCache skips the response cache for this call (a job's opt-out).
	NoCache bool
}

// Client returns a pipeline.ModelClient that calls the named model, then its fallbacks. The
// request's ModelID is replaced by each model's own. It reads the Fleet's configuration at
// each call, so it follows Update.
func (f *Fleet) Client(name string) pipeline.ModelClient {
	return &chainClient{fleet: f, name: name}
}

// ClientWith is Client with per-call options.
func (f *Fleet) ClientWith(name string, opts CallOptions) pipeline.ModelClient {
	return &chainClient{fleet: f, name: name, opts: opts}
}

type chainClient struct {
	fleet *Fleet
	name  string
	opts  CallOptions
}

// Invoke calls the chain: the model, then each fallback in order (depth first, each model
// once), then the degradation message. ModelResponse.Model names the model that answered
// when it is not the one called; Fallbacks lists the models tried before it.
func (c *chainClient) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	return c.fleet.invoke(ctx, c.name, req, c.opts)
}

func (f *Fleet) invoke(ctx context.Context, name string, req pipeline.ModelRequest, opts CallOptions) (pipeline.ModelResponse, error) {
	st := f.state.Load()
	if st.endpoints[name] == nil {
		return pipeline.ModelResponse{}, pipeline.Permanent("no_model",
			fmt.Errorf("model %q is not configured (use one of: %v)", name, f.Names()))
	}
	chain := st.chain(name)
	var tried []string
	var lastErr error
	for _, ep := range chain {
		r := req
		r.ModelID = ep.spec.ModelID
		key := ""
		if st.cache != nil && !opts.NoCache {
			key = CacheKey(ep.spec.Name, r)
			if resp, ok := st.cache.Get(key); ok {
				f.metrics.cache.WithLabelValues("hit").Inc()
				return finish(resp, name, ep.spec.Name, tried), nil
			}
			f.metrics.cache.WithLabelValues("miss").Inc()
		}
		resp, err := f.call(ctx, st, ep, r)
		if err == nil {
			if key != "" {
				st.cache.Put(key, resp)
			}
			return finish(resp, name, ep.spec.Name, tried), nil
		}
		lastErr = err
		if ctx.Err() != nil || !fallsBack(err) {
			return pipeline.ModelResponse{}, err
		}
		if kindOf(err) == pipeline.ModelThrottled && !st.policy.ThrottleFallback {
			return pipeline.ModelResponse{}, waitForPace(ep, err)
		}
		tried = append(tried, ep.spec.Name)
		if next := nextAfter(chain, ep); next != "" {
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.AddEvent("fallback", trace.WithAttributes(
					attribute.String("infleet.model", ep.spec.Name),
					attribute.String("infleet.fallback_model", next),
					attribute.String("error.type", string(kindOf(err)))))
			}
			f.metrics.fallbacks.WithLabelValues(ep.spec.Name, next).Inc()
			f.log.Warn().Err(err).Str("model", ep.spec.Name).Str("fallback", next).Msg("model could not answer; trying its fallback")
		}
	}
	if msg := st.policy.DegradedMessage; msg != "" {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("degraded", trace.WithAttributes(attribute.String("infleet.model", name),
				attribute.StringSlice("infleet.tried_models", tried)))
		}
		f.metrics.degraded.WithLabelValues(name).Inc()
		f.log.Warn().Err(lastErr).Str("model", name).Strs("tried", tried).Msg("no model could answer; degraded answer returned")
		return pipeline.ModelResponse{Text: msg, StopReason: StopDegraded, Model: name, Degraded: true, Fallbacks: tried}, nil
	}
	return pipeline.ModelResponse{}, lastErr
}

// finish marks who answered.
func finish(resp pipeline.ModelResponse, called, answered string, tried []string) pipeline.ModelResponse {
	if answered != called {
		resp.Model = answered
	}
	if len(tried) > 0 {
		resp.Fallbacks = slices.Clone(tried)
	}
	return resp
}

func nextAfter(chain []*endpoint, ep *endpoint) string {
	i := slices.Index(chain, ep)
	if i >= 0 && i+1 < len(chain) {
		return chain[i+1].spec.Name
	}
	return ""
}

// chain lists the model and its fallbacks, depth first, each once.
func (st *fleetState) chain(name string) []*endpoint {
	var out []*endpoint
	seen := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		ep := st.endpoints[n]
		if ep == nil || seen[n] {
			return
		}
		seen[n] = true
		out = append(out, ep)
		for _, fb := range ep.spec.Fallbacks {
			walk(fb)
		}
	}
	walk(name)
	return out
}

// deadlineBy reports whether ctx ends by t at the latest.
func deadlineBy(ctx context.Context, t time.Time) bool {
	dl, ok := ctx.Deadline()
	return ok && !dl.After(t)
}

// fallsBack reports whether another model may answer where this one failed: every model
// failure except a request no model would take.
func fallsBack(err error) bool {
	var me *pipeline.ModelError
	if errors.As(err, &me) {
		return me.Kind != pipeline.ModelInvalidRequest
	}
	var perm *pipeline.PermanentError
	return !errors.As(err, &perm)
}

// call makes up to MaxAttempts attempts on one model within the policy's deadline.
func (f *Fleet) call(ctx context.Context, st *fleetState, ep *endpoint, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	p := st.policy
	name := ep.spec.Name
	if end := time.Now().Add(cmpPos(p.Deadline, DefaultCallDeadline)); !deadlineBy(ctx, end) {
		// The policy's deadline only where it ends the call sooner than the caller's does
		// (a job's timeout is usually the sooner one): a timer fewer per call otherwise.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	maxAttempts := cmpPos(p.MaxAttempts, DefaultMaxAttempts)
	ep.health.budget.Deposit()
	var lastErr error
	throttled := false
	for attempt := 1; ; attempt++ {
		resp, err := f.attempt(ctx, ep, req, attempt)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		kind := kindOf(err)
		throttled = throttled || kind == pipeline.ModelThrottled
		if ctx.Err() != nil && throttled && kind.Retryable() && kind != pipeline.ModelThrottled {
			// The deadline ran out while the model was throttling this call: it is still a
			// throttled call (to wait for), not a failing model (to fall back from).
			return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelThrottled, RetryAfter: retryAfter(err),
				Err: fmt.Errorf("model %s throttled the call until its deadline: %w", name, err)}
		}
		if !kind.Retryable() || ctx.Err() != nil {
			return pipeline.ModelResponse{}, err
		}
		if errors.Is(err, ErrCircuitOpen) {
			return pipeline.ModelResponse{}, err
		}
		if attempt >= maxAttempts {
			return pipeline.ModelResponse{}, fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempt)
		}
		wait := backoff(p, attempt)
		if ra := retryAfter(err); ra > 0 {
			if ra > cmpPos(p.MaxRetryAfter, DefaultMaxRetryAfter) {
				return pipeline.ModelResponse{}, err
			}
			wait = max(wait, ra)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return pipeline.ModelResponse{}, err
		}
		if kind != pipeline.ModelThrottled && !ep.health.budget.Withdraw() {
			f.metrics.budgetExhausted.WithLabelValues(name).Inc()
			return pipeline.ModelResponse{}, fmt.Errorf("retry budget of model %s spent (retries are capped at a share of calls while it fails): %w", name, err)
		}
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("retry", trace.WithAttributes(
				attribute.String("infleet.model", name),
				attribute.Int("infleet.attempt", attempt+1),
				attribute.Int64("infleet.retry_wait_ms", wait.Milliseconds()),
				attribute.String("error.type", string(kind))))
		}
		f.metrics.retries.WithLabelValues(name, string(kind)).Inc()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return pipeline.ModelResponse{}, lastErr
		case <-t.C:
		}
	}
}

// attempt is one call through the breaker, limits and timeout, the n-th on this model, in a
// span of its own following OpenTelemetry's GenAI conventions when the caller's span records.
func (f *Fleet) attempt(ctx context.Context, ep *endpoint, req pipeline.ModelRequest, n int) (pipeline.ModelResponse, error) {
	if !pipeline.Tracing(ctx) {
		return f.tryOnce(ctx, ep, req)
	}
	ctx, span := pipeline.StartSpan(ctx, "chat "+req.ModelID, trace.SpanKindClient)
	span.SetAttributes(
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.system", cmp.Or(ep.spec.System, "_OTHER")),
		attribute.String("gen_ai.request.model", req.ModelID),
		attribute.String("infleet.model", ep.spec.Name),
		attribute.Int("infleet.attempt", n))
	resp, err := f.tryOnce(ctx, ep, req)
	if err == nil {
		span.SetAttributes(
			attribute.Int("gen_ai.usage.input_tokens", resp.Usage.InputTokens),
			attribute.Int("gen_ai.usage.output_tokens", resp.Usage.OutputTokens))
		if resp.Model != "" {
			span.SetAttributes(attribute.String("gen_ai.response.model", resp.Model))
		}
	} else {
		span.SetAttributes(attribute.String("error.type", string(kindOf(err))))
	}
	pipeline.EndSpan(span, err)
	return resp, err
}

// tryOnce is the body of attempt.
func (f *Fleet) tryOnce(ctx context.Context, ep *endpoint, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	name := ep.spec.Name
	if err := ep.health.breaker.Allow(); err != nil {
		f.metrics.attempts.WithLabelValues(name, "circuit_open").Inc()
		return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Err: fmt.Errorf("model %s: %w", name, err)}
	}
	ep.health.pace.callers.Add(1)
	defer ep.health.pace.callers.Add(-1)
	if err := ep.health.pace.wait(ctx, name); err != nil {
		ep.health.breaker.Done(true)
		f.metrics.attempts.WithLabelValues(name, "paced").Inc()
		return pipeline.ModelResponse{}, err
	}
	estimate := estimateTokens(req)
	release, err := ep.limits.acquire(ctx, estimate)
	if err != nil {
		ep.health.breaker.Done(true)
		f.metrics.attempts.WithLabelValues(name, "limited").Inc()
		return pipeline.ModelResponse{}, err
	}
	timeout := cmpPos(ep.spec.Timeout, DefaultModelTimeout)
	start := time.Now()
	actx, cancel := ctx, context.CancelFunc(func() {})
	own := !deadlineBy(ctx, start.Add(timeout))
	if own {
		// The model's own timeout only where it ends the attempt sooner than the caller's
		// deadline would (the call's deadline, workers.job_timeout): one context and timer
		// fewer per call otherwise.
		actx, cancel = context.WithDeadline(ctx, start.Add(timeout))
	}
	resp, err := ep.spec.Client.Invoke(actx, req)
	took := time.Since(start)
	timedOut := own && actx.Err() != nil && ctx.Err() == nil
	cancel()
	release(resp.Usage)
	if err != nil && timedOut {
		err = &pipeline.ModelError{Kind: pipeline.ModelTimeout, Err: fmt.Errorf("no answer within %s (raise the model's timeout): %w", timeout, err)}
	}
	// Throttling is back-pressure from a live endpoint, left to the retry budget and limits;
	// the breaker counts only failures that say the endpoint is unwell.
	healthy := err == nil || !kindOf(err).Retryable() || kindOf(err) == pipeline.ModelThrottled ||
		(ctx.Err() != nil && !timedOut)
	ep.health.breaker.Done(healthy)
	var series *okSeries
	if err == nil {
		series = ep.okSeries(f.metrics)
	}
	if err == nil || kindOf(err) == pipeline.ModelThrottled {
		ep.health.pace.done(err != nil)
		if series != nil {
			series.pace.Set(ep.health.pace.paced())
		} else {
			f.metrics.pace.WithLabelValues(name).Set(ep.health.pace.paced())
		}
	}
	if err != nil {
		kind := kindOf(err)
		f.metrics.attempts.WithLabelValues(name, string(kind)).Inc()
		ep.health.stats.record(took, false, kind == pipeline.ModelThrottled, 0, 0, 0)
		return pipeline.ModelResponse{}, err
	}
	cost := ep.spec.Price.Cost(resp.Usage.InputTokens, resp.Usage.OutputTokens)
	resp.Usage.CostUSD = cost
	ep.health.stats.record(took, true, false, resp.Usage.InputTokens, resp.Usage.OutputTokens, cost)
	series.attempts.Inc()
	series.cost.Add(cost)
	nano := pipeline.USDToNano(cost)
	f.ledger.charge(ctx, name, req.Tenant, nano)
	if f.usage != nil {
		f.usage.add(usageOf(time.Now(), name, req, resp.Usage, nano))
	}
	if req.Tenant != "" {
		tenant := f.metrics.tenant(req.Tenant)
		f.metrics.tenantCost.WithLabelValues(tenant, name).Add(cost)
		f.metrics.tenantTokens.WithLabelValues(tenant, name, "input").Add(float64(resp.Usage.InputTokens))
		f.metrics.tenantTokens.WithLabelValues(tenant, name, "output").Add(float64(resp.Usage.OutputTokens))
	}
	return resp, nil
}

// kindOf classifies err; errors that are not a *pipeline.ModelError count as unavailable
// (retryable), as the worker's own classification does, except context errors of the caller.
func kindOf(err error) pipeline.ModelErrorKind {
	var me *pipeline.ModelError
	if errors.As(err, &me) {
		return me.Kind
	}
	var perm *pipeline.PermanentError
	if errors.As(err, &perm) {
		return pipeline.ModelInvalidRequest
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return pipeline.ModelTimeout
	}
	return pipeline.ModelUnavailable
}

func retryAfter(err error) time.Duration {
	var me *pipeline.ModelError
	if errors.As(err, &me) {
		return me.RetryAfter
	}
	var ra *pipeline.RetryAfterError
	if errors.As(err, &ra) {
		return ra.After
	}
	return 0
}

// backoff returns the full-jitter wait after the given failed attempt.
func backoff(p Policy, attempt int) time.Duration {
	base := cmpPos(p.BackoffBase, DefaultBackoffBase)
	ceil := cmpPos(p.BackoffMax, DefaultBackoffMax)
	d := base
	for i := 1; i < attempt && d < ceil; i++ {
		d *= 2
	}
	d = min(d, ceil)
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// waitForPace is the error of a call that ended throttled: still throttled, with its own
// Retry-After, at least a second, for the job to wait in the queue and come back to the same
// model.
func waitForPace(ep *endpoint, err error) error {
	after := max(retryAfter(err), time.Second)
	return &pipeline.ModelError{Kind: pipeline.ModelThrottled, RetryAfter: after,
		Err: fmt.Errorf("model %s is throttling; the job waits %s and is retried on it (set resilience.throttle_fallback to move to the fallback instead): %w",
			ep.spec.Name, after.Round(time.Millisecond), err)}
}
