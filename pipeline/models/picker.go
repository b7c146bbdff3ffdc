package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batch"
)

// Rule kinds, as infleet_routing_decisions_total names them.
const (
	DecidedByJob      = "job"
	DecidedByRule     = "rule"
	DecidedBySplit    = "split"
	DecidedByAdaptive = "adaptive"
	DecidedByRoute    = "route"
	DecidedByBudget   = "budget"
)

// Metadata keys a job may set to change how its model is called.
const (
	// MetaCache false skips the response cache for the job.
	MetaCache = "cache"
	// MetaPromptVersion picks a version of the task's prompt template; default the highest.
	MetaPromptVersion = "prompt_version"
)

// RoutingSpec is the routing configuration: which model a job goes to and how its request is
// built.
type RoutingSpec struct {
	// Routes maps a task to a model; "default" catches the rest. A default is required.
	Routes map[string]string
	// Rules are content rules, tried in order; the first that matches wins over Routes.
	Rules []Rule
	// Splits share a task's jobs among models by weight, sticky by job key.
	Splits []Split
	// Adaptive choose among models by their live p95 latency and error rate.
	Adaptive []Adaptive
	// Budgets cap a model's daily spend; over the cap its jobs go to DowngradeTo.
	Budgets []Budget
	// Prompts are prompt templates per task, several versions each.
	Prompts []Prompt
	// Batching sends the jobs of these tasks to their model in groups (request batching), at
	// most one entry per task.
	Batching []Batching
}

// Batching groups a task's jobs that share model and prompt version into one model call
// (see package batch). The zero values of the bounds take batch's defaults.
type Batching struct {
	Task string
	batch.Rule
}

// Rule sends matching jobs to Model. Every condition set must hold.
type Rule struct {
	// Name identifies the rule in logs. Default "rules[i]".
	Name string
	// Task limits the rule to one task. Default: every task.
	Task string
	// MinChars and MaxChars bound the input length in characters (0: no bound).
	MinChars, MaxChars int
	// Language is the input's script-based language: latin, zh, ja, ko, cyrillic, arabic,
	// greek, hebrew, devanagari, thai.
	Language string
	// Keywords match when the input contains any of them, case-insensitively.
	Keywords []string
	// Regex matches the input (RE2 syntax).
	Regex string
	// Metadata match when each key of the job's metadata equals the value (as text).
	Metadata map[string]string
	// Model the job goes to. Required.
	Model string
}

// Split shares a task's jobs among weighted variants (A/B tests, canaries). A job's variant
// depends only on its key (idempotency key, else job id), so its retries stay on one model.
type Split struct {
	// Task the split applies to; "default" applies to tasks with no split of their own.
	Task     string
	Variants []Variant
}

// Variant is one arm of a Split.
type Variant struct {
	Model  string
	Weight int
}

// Adaptive picks, for a task, the model with the lowest live p95 latency among those whose
// error rate is below MaxErrorRate and whose circuit is not open.
type Adaptive struct {
	Task   string
	Models []string
	// MaxErrorRate above which a model is avoided. Default 0.2.
	MaxErrorRate float64
}

// Budget caps estimated spend per UTC day: a model's (Model set, Tenant empty) or a tenant's,
// on every model (Tenant set). The spend is the fleet's when the Fleet has a FleetConfig.Spend
// store, else this process's. A call is admitted while the spend is below the cap, and holds
// its estimated cost (estimated input and max_tokens, else 256, of output) until it ends; once
// the cap is reached calls go to DowngradeTo. A tenant budget with Model set downgrades only
// that model's calls; a tenant budget with neither Model nor DowngradeTo refuses the tenant's
// new jobs at intake (Picker.TenantOverBudget) and fails its queued ones (ErrCodeBudget).
type Budget struct {
	Model       string
	Tenant      string
	DailyUSD    float64
	DowngradeTo string
}

// Prompt is one version of a task's prompt template (Go text/template). Variables: .Input (the
// last message's text), .Task, .Metadata (the job's metadata object).
type Prompt struct {
	Task string
	// Version is a semantic version, e.g. 1.2.0.
	Version string
	// System, when set, becomes the system prompt.
	System string
	// Template, when set, replaces the last message's text.
	Template string
}

// DefaultMaxErrorRate is Adaptive.MaxErrorRate's default.
const DefaultMaxErrorRate = 0.2

// Picker is a pipeline.ModelPicker over a Fleet. Safe for concurrent use; Set swaps its
// routing atomically.
type Picker struct {
	fleet   *Fleet
	routing atomic.Pointer[Routing]
	batcher *batch.Batcher
}

// NewPicker returns a Picker with routing r (from CompileRouting).
func NewPicker(f *Fleet, r *Routing) *Picker {
	p := &Picker{fleet: f, batcher: batch.New()}
	p.routing.Store(r)
	f.ledger.setBudgets(r.spec.Budgets)
	f.metrics.registerBatching(p.batcher)
	return p
}

// Set replaces the routing. Groups already collecting keep the rule they started with.
func (p *Picker) Set(r *Routing) {
	p.routing.Store(r)
	p.fleet.ledger.setBudgets(r.spec.Budgets)
}

// BatchStats returns what request batching did in this process so far.
func (p *Picker) BatchStats() batch.Stats { return p.batcher.Stats() }

// TenantOverBudget reports whether tenant has spent, today (UTC), at least a tenant budget
// that has no downgrade_to: such a budget refuses the tenant's new jobs. It returns the spend
// (with the estimates of calls in flight) and the cap. Safe for concurrent use.
func (p *Picker) TenantOverBudget(ctx context.Context, tenant string) (spent, cap float64, over bool, err error) {
	return p.fleet.ledger.tenantOverBudget(ctx, tenant)
}

// FlushUsage writes the usage the Picker's Fleet gathered so far to its store now (see
// Fleet.FlushUsage).
func (p *Picker) FlushUsage(ctx context.Context) error { return p.fleet.FlushUsage(ctx) }

// BudgetSpent returns what budget b has counted today (UTC), with the estimates of calls in
// flight, in US dollars.
func (p *Picker) BudgetSpent(ctx context.Context, b Budget) (float64, error) {
	n, err := p.fleet.ledger.spent(ctx, b)
	return pipeline.NanoToUSD(n), err
}

// Routing is a checked, compiled RoutingSpec. Immutable.
type Routing struct {
	spec     RoutingSpec
	regexes  []*regexp.Regexp
	keywords [][]string
	prompts  map[string][]*prompt
	batching map[string]batch.Rule
	// hasBudgets is true when a budget is set: budgets are checked at call time, when the
	// tenant is known and the spend of calls in flight counts.
	hasBudgets bool
}

// CompileRouting checks spec against the configured model names (has) and compiles its
// regular expressions and templates, listing every problem.
func CompileRouting(spec RoutingSpec, has func(string) bool) (*Routing, error) {
	r := &Routing{spec: spec, prompts: map[string][]*prompt{}, batching: map[string]batch.Rule{}}
	var errs []error
	model := func(field, name string) {
		if !has(name) {
			errs = append(errs, fmt.Errorf("%s names model %q, which is not configured", field, name))
		}
	}
	if _, ok := spec.Routes[pipeline.RouteDefault]; !ok {
		errs = append(errs, errors.New("no default route (set routes.default to a model name)"))
	}
	for task, m := range spec.Routes {
		model("routes."+task, m)
	}
	for i, rule := range spec.Rules {
		field := fmt.Sprintf("routing.rules[%d]", i)
		model(field+".model", rule.Model)
		var re *regexp.Regexp
		if rule.Regex != "" {
			var err error
			if re, err = regexp.Compile(rule.Regex); err != nil {
				errs = append(errs, fmt.Errorf("%s.regex: %w", field, err))
			}
		}
		r.regexes = append(r.regexes, re)
		kw := make([]string, len(rule.Keywords))
		for j, k := range rule.Keywords {
			kw[j] = strings.ToLower(k)
		}
		r.keywords = append(r.keywords, kw)
	}
	for i, s := range spec.Splits {
		total := 0
		for j, v := range s.Variants {
			model(fmt.Sprintf("routing.splits[%d].variants[%d].model", i, j), v.Model)
			if v.Weight < 0 {
				errs = append(errs, fmt.Errorf("routing.splits[%d].variants[%d].weight is negative", i, j))
			}
			total += v.Weight
		}
		if total <= 0 {
			errs = append(errs, fmt.Errorf("routing.splits[%d]: the weights add up to %d; give at least one variant a positive weight", i, total))
		}
	}
	for i, a := range spec.Adaptive {
		if len(a.Models) == 0 {
			errs = append(errs, fmt.Errorf("routing.adaptive[%d].models is empty", i))
		}
		for j, m := range a.Models {
			model(fmt.Sprintf("routing.adaptive[%d].models[%d]", i, j), m)
		}
	}
	for i, b := range spec.Budgets {
		if b.Model == "" && b.Tenant == "" {
			errs = append(errs, fmt.Errorf("budgets[%d]: set model, tenant or both", i))
		}
		if b.Model != "" {
			model(fmt.Sprintf("budgets[%d].model", i), b.Model)
		}
		if b.DowngradeTo == "" && b.Tenant != "" && b.Model == "" {
			continue // a tenant's whole-spend cap with nowhere to go: intake refuses new jobs
		}
		model(fmt.Sprintf("budgets[%d].downgrade_to", i), b.DowngradeTo)
	}
	for i, b := range spec.Batching {
		switch {
		case b.Task == "":
			errs = append(errs, fmt.Errorf("batching[%d].task is empty; name the task whose jobs are batched", i))
		case b.MaxItems < 0 || b.MaxWait < 0 || b.MaxInputTokens < 0:
			errs = append(errs, fmt.Errorf("batching[%d] (%s): max_items, max_wait and max_input_tokens must not be negative", i, b.Task))
		default:
			if _, dup := r.batching[b.Task]; dup {
				errs = append(errs, fmt.Errorf("batching[%d]: task %s is batched twice; keep one entry", i, b.Task))
			}
			r.batching[b.Task] = b.Rule
		}
	}
	r.hasBudgets = slices.ContainsFunc(spec.Budgets, func(b Budget) bool { return b.DailyUSD > 0 })
	for i, pr := range spec.Prompts {
		c, err := compilePrompt(pr)
		if err != nil {
			errs = append(errs, fmt.Errorf("prompts[%d] (%s@%s): %w", i, pr.Task, pr.Version, err))
			continue
		}
		r.prompts[pr.Task] = append(r.prompts[pr.Task], c)
	}
	for task, ps := range r.prompts {
		slices.SortFunc(ps, func(a, b *prompt) int { return compareSemver(b.version, a.version) })
		for i := 1; i < len(ps); i++ {
			if compareSemver(ps[i].version, ps[i-1].version) == 0 {
				errs = append(errs, fmt.Errorf("prompts: %s@%s is defined twice", task, ps[i].spec.Version))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Pick returns the model for job: its own model when it names one, else the first matching
// content rule, the task's split, its adaptive choice or its route. The returned client checks
// the daily budgets when it calls (and moves to a budget's downgrade_to while the budget is
// spent), applies the task's prompt template and the job's cache opt-out.
func (p *Picker) Pick(job *messages.Job) (pipeline.Model, error) {
	r := p.routing.Load()
	name, by := "", ""
	if job.Model != "" {
		if !p.fleet.Has(job.Model) {
			return pipeline.Model{}, pipeline.Permanent(messages.ErrCodeNoModel,
				fmt.Errorf("model %q is not configured (use one of: %s)", job.Model, strings.Join(p.fleet.Names(), ", ")))
		}
		name, by = job.Model, DecidedByJob
	} else {
		name, by = r.choose(p.fleet, job)
	}
	p.fleet.metrics.routes.WithLabelValues(by, name).Inc()

	meta := metadataOf(job)
	opts := CallOptions{NoCache: meta[MetaCache] == false}
	var client pipeline.ModelClient = p.fleet.ClientWith(name, opts)
	if r.hasBudgets {
		client = &budgetClient{fleet: p.fleet, name: name, opts: opts}
	}
	pr := r.promptFor(job.Task, meta)
	if rule, ok := r.batching[job.Task]; ok {
		client = &batchClient{batcher: p.batcher, rule: rule, next: client, prompt: pr, task: job.Task, meta: meta,
			key: batchKey(job.Task, name, pr, opts)}
	} else if pr != nil {
		client = &promptClient{next: client, prompt: pr, task: job.Task, meta: meta}
	}
	return pipeline.Model{Name: name, ModelID: p.fleet.ModelID(name), Client: client}, nil
}

// choose applies rules, splits, adaptive choices and routes, in that order.
func (r *Routing) choose(f *Fleet, job *messages.Job) (string, string) {
	var input string
	var meta map[string]any
	for i, rule := range r.spec.Rules {
		if rule.Task != "" && rule.Task != job.Task {
			continue
		}
		if input == "" {
			input = inputText(job)
			meta = metadataOf(job)
		}
		if r.matches(i, input, meta) {
			return rule.Model, DecidedByRule
		}
	}
	if s, ok := r.split(job.Task); ok {
		return s.pick(jobKey(job)), DecidedBySplit
	}
	for _, a := range r.spec.Adaptive {
		if a.Task == job.Task {
			if m := a.pick(f); m != "" {
				return m, DecidedByAdaptive
			}
		}
	}
	if m, ok := r.spec.Routes[job.Task]; ok {
		return m, DecidedByRoute
	}
	return r.spec.Routes[pipeline.RouteDefault], DecidedByRoute
}

func (r *Routing) matches(i int, input string, meta map[string]any) bool {
	rule := r.spec.Rules[i]
	n := len([]rune(input))
	if rule.MinChars > 0 && n < rule.MinChars || rule.MaxChars > 0 && n > rule.MaxChars {
		return false
	}
	if rule.Language != "" && DetectLanguage(input) != rule.Language {
		return false
	}
	if kw := r.keywords[i]; len(kw) > 0 {
		lower := strings.ToLower(input)
		if !slices.ContainsFunc(kw, func(k string) bool { return strings.Contains(lower, k) }) {
			return false
		}
	}
	if re := r.regexes[i]; re != nil && !re.MatchString(input) {
		return false
	}
	for k, want := range rule.Metadata {
		v, ok := meta[k]
		if !ok || metaText(v) != want {
			return false
		}
	}
	return true
}

func (r *Routing) split(task string) (Split, bool) {
	var def Split
	found := false
	for _, s := range r.spec.Splits {
		if s.Task == task {
			return s, true
		}
		if s.Task == pipeline.RouteDefault && !found {
			def, found = s, true
		}
	}
	if found {
		if _, own := r.spec.Routes[task]; own {
			return Split{}, false
		}
	}
	return def, found
}

// pick returns the variant of key: a hash of the key placed on the cumulative weights.
func (s Split) pick(key string) string {
	total := 0
	for _, v := range s.Variants {
		total += max(v.Weight, 0)
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	at := int(h.Sum64() % uint64(total))
	for _, v := range s.Variants {
		if at < max(v.Weight, 0) {
			return v.Model
		}
		at -= max(v.Weight, 0)
	}
	return s.Variants[len(s.Variants)-1].Model
}

// pick returns the healthy model with the lowest p95; models with no figures yet count as
// fastest, so each gets tried. "" when every model is unhealthy.
func (a Adaptive) pick(f *Fleet) string {
	limit := cmpPos(a.MaxErrorRate, DefaultMaxErrorRate)
	best, bestP95 := "", int64(-1)
	for _, m := range a.Models {
		s, ok := f.Snapshot(m)
		if !ok || s.Circuit == StateOpen || (s.Calls >= 10 && s.ErrorRate > limit) {
			continue
		}
		p95 := int64(s.P95)
		if s.Calls < 10 {
			p95 = 0
		}
		if best == "" || p95 < bestP95 {
			best, bestP95 = m, p95
		}
	}
	return best
}

// jobKey is what sticky assignment hashes: the idempotency key, else the job id.
func jobKey(job *messages.Job) string {
	if job.IdempotencyKey != "" {
		return job.Task + "\x00" + job.IdempotencyKey
	}
	return job.JobID
}

// inputText is the text content rules look at: the text input or the last message.
func inputText(job *messages.Job) string {
	if job.Input.Text != "" {
		return job.Input.Text
	}
	if n := len(job.Input.Messages); n > 0 {
		return job.Input.Messages[n-1].Content
	}
	return ""
}

func metadataOf(job *messages.Job) map[string]any {
	if len(job.Metadata) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(job.Metadata, &m) != nil {
		return nil
	}
	return m
}

func metaText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// DetectLanguage names the dominant script of s among its letters: latin, zh, ja, ko,
// cyrillic, arabic, greek, hebrew, devanagari, thai, or "" when s has no letters. Kana
// anywhere makes Han text ja.
func DetectLanguage(s string) string {
	counts := map[string]int{}
	kana := false
	for i, r := range []rune(s) {
		if i > 4096 {
			break
		}
		switch {
		case unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r):
			kana = true
			counts["ja"]++
		case unicode.Is(unicode.Han, r):
			counts["zh"]++
		case unicode.Is(unicode.Hangul, r):
			counts["ko"]++
		case unicode.Is(unicode.Cyrillic, r):
			counts["cyrillic"]++
		case unicode.Is(unicode.Arabic, r):
			counts["arabic"]++
		case unicode.Is(unicode.Greek, r):
			counts["greek"]++
		case unicode.Is(unicode.Hebrew, r):
			counts["hebrew"]++
		case unicode.Is(unicode.Devanagari, r):
			counts["devanagari"]++
		case unicode.Is(unicode.Thai, r):
			counts["thai"]++
		case unicode.Is(unicode.Latin, r):
			counts["latin"]++
		}
	}
	if kana {
		counts["ja"] += counts["zh"]
		delete(counts, "zh")
	}
	best, n := "", 0
	for _, k := range []string{"latin", "zh", "ja", "ko", "cyrillic", "arabic", "greek", "hebrew", "devanagari", "thai"} {
		if counts[k] > n {
			best, n = k, counts[k]
		}
	}
	return best
}
