package models_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/sim"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// setupPicker returns a Picker over sim models named in names and the routing spec.
func setupPicker(t *testing.T, spec models.RoutingSpec, names ...string) (*models.Picker, *models.Fleet) {
	t.Helper()
	var specs []models.ModelSpec
	for _, n := range names {
		specs = append(specs, models.ModelSpec{Name: n, ModelID: n, Client: sim.New(sim.Config{}), Price: models.Price{InputPerMTok: 1e6, OutputPerMTok: 1e6}})
	}
	f, err := models.NewFleet(models.FleetConfig{Models: specs})
	if err != nil {
		t.Fatal(err)
	}
	r, err := models.CompileRouting(spec, f.Has)
	if err != nil {
		t.Fatal(err)
	}
	return models.NewPicker(f, r), f
}

func job(task, text, meta string) *messages.Job {
	j := &messages.Job{JobID: "job-" + text, Task: task, Input: messages.Input{Text: text}}
	if meta != "" {
		j.Metadata = json.RawMessage(meta)
	}
	return j
}

func pick(t *testing.T, p *models.Picker, j *messages.Job) string {
	t.Helper()
	m, err := p.Pick(j)
	if err != nil {
		t.Fatal(err)
	}
	return m.Name
}

func TestRouteSelectionByRuleKind(t *testing.T) {
	t.Parallel()
	spec := models.RoutingSpec{
		Routes: map[string]string{"default": "fast", "classify": "classifier"},
		Rules: []models.Rule{
			{Name: "long", Task: "summarize", MinChars: 50, Model: "big"},
			{Name: "japanese", Language: "ja", Model: "multilingual"},
			{Name: "legal", Keywords: []string{"Contract", "indemnity"}, Model: "legal"},
			{Name: "ticket", Regex: `^TICKET-[0-9]+`, Model: "support"},
			{Name: "gold", Metadata: map[string]string{"tier": "gold"}, Model: "premium"},
		},
	}
	p, _ := setupPicker(t, spec, "fast", "classifier", "big", "multilingual", "legal", "support", "premium")
	for _, tc := range []struct {
		name string
		job  *messages.Job
		want string
	}{
		{"default route", job("translate", "hello", ""), "fast"},
		{"task route", job("classify", "hello", ""), "classifier"},
		{"min chars", job("summarize", strings.Repeat("a ", 30), ""), "big"},
		{"min chars other task", job("translate", strings.Repeat("a ", 30), ""), "fast"},
		{"language", job("translate", "これは日本語の文章です", ""), "multilingual"},
		{"keyword", job("classify", "the CONTRACT says", ""), "legal"},
		{"regex", job("classify", "TICKET-42 printer on fire", ""), "support"},
		{"metadata", job("classify", "hi", `{"tier":"gold"}`), "premium"},
		{"metadata mismatch", job("classify", "hi", `{"tier":"silver"}`), "classifier"},
		{"job's own model", &messages.Job{JobID: "j", Task: "classify", Model: "big", Input: messages.Input{Text: "TICKET-1"}}, "big"},
	} {
		if got := pick(t, p, tc.job); got != tc.want {
			t.Errorf("%s: picked %s, want %s", tc.name, got, tc.want)
		}
	}
	_, err := p.Pick(&messages.Job{Task: "x", Model: "nope"})
	var perm *pipeline.PermanentError
	if !errors.As(err, &perm) || perm.Code != messages.ErrCodeNoModel {
		t.Errorf("unknown model: err = %v, want a no_model PermanentError", err)
	}
}

func TestSplitIsWeightedAndSticky(t *testing.T) {
	t.Parallel()
	p, _ := setupPicker(t, models.RoutingSpec{
		Routes: map[string]string{"default": "stable"},
		Splits: []models.Split{{Task: "summarize", Variants: []models.Variant{{Model: "stable", Weight: 90}, {Model: "canary", Weight: 10}}}},
	}, "stable", "canary")
	counts := map[string]int{}
	for i := range 2000 {
		j := &messages.Job{JobID: fmt.Sprintf("job-%d", i), Task: "summarize", Input: messages.Input{Text: "x"}}
		first := pick(t, p, j)
		if again := pick(t, p, j); again != first {
			t.Fatalf("job %d moved from %s to %s", i, first, again)
		}
		counts[first]++
	}
	if c := counts["canary"]; c < 140 || c > 260 {
		t.Errorf("canary got %d of 2000, want about 200", c)
	}
	byKey := func(id string) string {
		return pick(t, p, &messages.Job{JobID: id, IdempotencyKey: "order-7", Task: "summarize", Input: messages.Input{Text: "x"}})
	}
	for i := range 20 {
		if byKey(fmt.Sprintf("a%d", i)) != byKey("b") {
			t.Fatal("jobs with one idempotency key went to different variants")
		}
	}
}

func TestAdaptivePrefersFastHealthyModels(t *testing.T) {
	t.Parallel()
	p := fastPolicy()
	p.MaxAttempts = 1
	b := setup(t, map[string]fmsim.Faults{"slow": {Latency: fmsim.Latency{P50: 20 * time.Millisecond}}, "quick": {}}, p,
		models.ModelSpec{Name: "slow"}, models.ModelSpec{Name: "quick"})
	r, err := models.CompileRouting(models.RoutingSpec{
		Routes:   map[string]string{"default": "slow"},
		Adaptive: []models.Adaptive{{Task: "summarize", Models: []string{"slow", "quick"}, MaxErrorRate: 0.2}},
	}, b.fleet.Has)
	if err != nil {
		t.Fatal(err)
	}
	picker := models.NewPicker(b.fleet, r)
	for range 12 {
		for _, m := range []string{"slow", "quick"} {
			if _, err := b.fleet.Client(m).Invoke(t.Context(), request("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := pick(t, picker, job("summarize", "x", "")); got != "quick" {
		t.Fatalf("picked %s, want quick (lower p95)", got)
	}
	b.sim.SetFaults("quick", fmsim.Faults{ErrorRate: 1})
	for range 12 {
		_, _ = b.fleet.Client("quick").Invoke(t.Context(), request("x"))
	}
	if got := pick(t, picker, job("summarize", "x", "")); got != "slow" {
		t.Fatalf("picked %s, want slow: quick now fails", got)
	}
}

func TestBudgetDowngradesWhenTheDailyCapIsSpent(t *testing.T) {
	t.Parallel()
	p, f := setupPicker(t, models.RoutingSpec{
		Routes:  map[string]string{"default": "premium"},
		Budgets: []models.Budget{{Model: "premium", DailyUSD: 5, DowngradeTo: "cheap"}},
	}, "premium", "cheap")
	if got := answeredBy(t, p, job("summarize", "x", ""), ""); got != "premium" {
		t.Fatalf("answered by %s before spending, want premium", got)
	}
	// sim's price here is $1 a token: one call of a few tokens spends more than $5, also when
	// the call does not go through the picker.
	resp, err := f.Client("premium").Invoke(t.Context(), request("spend some money please"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.CostUSD < 5 {
		t.Fatalf("cost %v, want over 5", resp.Usage.CostUSD)
	}
	if got := answeredBy(t, p, job("summarize", "x", ""), ""); got != "cheap" {
		t.Fatalf("answered by %s after the cap, want cheap", got)
	}
	if spent, err := p.BudgetSpent(t.Context(), models.Budget{Model: "premium", DailyUSD: 5}); err != nil || spent < 10 {
		t.Fatalf("premium's budget counted $%v, %v; want both premium calls", spent, err)
	}
}

// answeredBy picks j's model and calls it for tenant, returning the model that answered.
func answeredBy(t *testing.T, p *models.Picker, j *messages.Job, tenant string) string {
	t.Helper()
	m, err := p.Pick(j)
	if err != nil {
		t.Fatal(err)
	}
	req := request("spend some money please")
	req.Tenant = tenant
	resp, err := m.Client.Invoke(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "" {
		return resp.Model
	}
	return m.Name
}

func TestTenantBudgetDowngradesOnlyThatTenant(t *testing.T) {
	t.Parallel()
	p, _ := setupPicker(t, models.RoutingSpec{
		Routes:  map[string]string{"default": "premium"},
		Budgets: []models.Budget{{Tenant: "acme", DailyUSD: 5, DowngradeTo: "cheap"}},
	}, "premium", "cheap")
	call := func(tenant string) string { return answeredBy(t, p, job("summarize", "x", ""), tenant) }
	if got := call("acme"); got != "premium" {
		t.Fatalf("first acme call answered by %s, want premium", got)
	}
	if got := call("acme"); got != "cheap" {
		t.Fatalf("acme over its budget answered by %s, want cheap", got)
	}
	if got := call("globex"); got != "premium" {
		t.Fatalf("another tenant answered by %s, want premium", got)
	}
}

// A tenant budget with nowhere to downgrade refuses the tenant at intake and fails its calls
// once spent; other tenants go on.
func TestTenantBudgetRefusesOnceSpent(t *testing.T) {
	t.Parallel()
	p, _ := setupPicker(t, models.RoutingSpec{
		Routes:  map[string]string{"default": "premium"},
		Budgets: []models.Budget{{Tenant: "acme", DailyUSD: 5}},
	}, "premium")
	if _, _, over, err := p.TenantOverBudget(t.Context(), "acme"); over || err != nil {
		t.Fatalf("over before spending (%v)", err)
	}
	if got := answeredBy(t, p, job("summarize", "x", ""), "acme"); got != "premium" {
		t.Fatalf("first call answered by %s", got)
	}
	spent, capUSD, over, err := p.TenantOverBudget(t.Context(), "acme")
	if !over || err != nil || spent < 5 || capUSD != 5 {
		t.Fatalf("after spending: spent %v cap %v over %v (%v); want over a $5 cap", spent, capUSD, over, err)
	}
	m, err := p.Pick(job("summarize", "x", ""))
	if err != nil {
		t.Fatal(err)
	}
	req := request("one more")
	req.Tenant = "acme"
	_, err = m.Client.Invoke(t.Context(), req)
	var perm *pipeline.PermanentError
	if !errors.As(err, &perm) || perm.Code != models.ErrCodeBudget {
		t.Fatalf("call over the budget: %v, want a permanent %s error", err, models.ErrCodeBudget)
	}
	if got := answeredBy(t, p, job("summarize", "x", ""), "globex"); got != "premium" {
		t.Fatalf("another tenant answered by %s", got)
	}
}

func TestPromptTemplatesAreVersioned(t *testing.T) {
	t.Parallel()
	p, _ := setupPicker(t, models.RoutingSpec{
		Routes: map[string]string{"default": "m"},
		Prompts: []models.Prompt{
			{Task: "echo", Version: "1.2.0", Template: "v1.2 {{.Input}} for {{.Metadata.customer}}"},
			{Task: "echo", Version: "1.10.0", Template: "v1.10 {{.Input}}", System: "You are terse."},
			{Task: "echo", Version: "0.9.1", Template: "old {{.Input}}"},
		},
	}, "m")
	invoke := func(meta string) pipeline.ModelResponse {
		j := job("echo", "hello", meta)
		m, err := p.Pick(j)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := m.Client.Invoke(t.Context(), pipeline.ModelRequest{ModelID: m.ModelID, Task: "echo",
			Messages: []messages.ChatMessage{{Role: "user", Content: "hello"}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := invoke(""); r.Prompt != "echo@1.10.0" || !strings.Contains(r.Text, "v1.10 hello") {
		t.Errorf("default: prompt %q text %q, want the highest version 1.10.0", r.Prompt, r.Text)
	}
	if r := invoke(`{"prompt_version":"1.2.0","customer":"acme"}`); r.Prompt != "echo@1.2.0" || !strings.Contains(r.Text, "v1.2 hello for acme") {
		t.Errorf("pinned: prompt %q text %q, want 1.2.0 with the customer filled in", r.Prompt, r.Text)
	}
	if r := invoke(`{"prompt_version":"0.9"}`); r.Prompt != "echo@0.9.1" {
		t.Errorf("prefix: prompt %q, want 0.9.1", r.Prompt)
	}
}

func TestCompileRoutingListsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := models.CompileRouting(models.RoutingSpec{
		Routes:  map[string]string{"summarize": "ghost"},
		Rules:   []models.Rule{{Regex: "(", Model: "m"}},
		Splits:  []models.Split{{Task: "x", Variants: []models.Variant{{Model: "m", Weight: 0}}}},
		Budgets: []models.Budget{{Model: "m", DailyUSD: 1, DowngradeTo: "ghost2"}},
		Prompts: []models.Prompt{{Task: "x", Version: "1.2"}, {Task: "y", Version: "1.0.0", Template: "{{"}},
	}, func(n string) bool { return n == "m" })
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"no default route", `"ghost"`, "regex", "weights add up to 0", `"ghost2"`, "MAJOR.MINOR.PATCH", "template"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestCacheOptOutFromJobMetadata(t *testing.T) {
	t.Parallel()
	pol := fastPolicy()
	pol.CacheTTL = time.Minute
	b := setup(t, nil, pol, models.ModelSpec{Name: "m"})
	r, err := models.CompileRouting(models.RoutingSpec{Routes: map[string]string{"default": "m"}}, b.fleet.Has)
	if err != nil {
		t.Fatal(err)
	}
	p := models.NewPicker(b.fleet, r)
	for _, meta := range []string{"", "", `{"cache":false}`} {
		m, err := p.Pick(job("summarize", "same", meta))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Client.Invoke(t.Context(), request("same")); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.total("m"); got != 2 {
		t.Errorf("calls %d, want 2: one miss, one hit, one opt-out", got)
	}
}
