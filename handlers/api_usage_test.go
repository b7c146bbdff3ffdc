package handlers

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/pipeline"
)

// principalHeader names the principal of a usage test request: "op" an operator, any other
// value a tenant of that name.
const principalHeader = "X-Test-Principal"

func setupUsage(t *testing.T) (*testBundle, string) {
	t.Helper()
	store, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "usage.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	today := pipeline.UsageDay(time.Now())
	row := func(day, tenant, model, task string, calls int64) pipeline.UsageRow {
		return pipeline.UsageRow{Day: day, Tenant: tenant, Model: model, Task: task, Calls: calls,
			InputTokens: 10 * calls, OutputTokens: 5 * calls, CostNanoUSD: 250_000_000 * calls}
	}
	if err := store.AddUsage(t.Context(), []pipeline.UsageRow{
		row(today, "acme", "fast", "summarize", 2),
		row(today, "acme", "smart", "classify", 1),
		row(today, "globex", "fast", "summarize", 4),
		row("2020-01-01", "acme", "fast", "summarize", 100),
	}); err != nil {
		t.Fatal(err)
	}
	principal := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch who := r.Header.Get(principalHeader); who {
			case "":
			case "op":
				r = r.WithContext(ContextWithPrincipal(r.Context(), Principal{Tenant: "ops", Operator: true}))
			default:
				r = r.WithContext(ContextWithPrincipal(r.Context(), Principal{Tenant: who}))
			}
			next.ServeHTTP(w, r)
		})
	}
	return setup(t, func(c *APIConfig) {
		c.Usage = store
		c.Middleware = []func(http.Handler) http.Handler{principal}
	}), today
}

func getUsage(t *testing.T, b *testBundle, query, who string) UsageReport {
	t.Helper()
	resp := b.do(t, http.MethodGet, "/v1/usage"+query, "", principalHeader+": "+who)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/usage%s as %q: %d %s", query, who, resp.StatusCode, body)
	}
	var rep UsageReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestUsageOperatorSeesEveryTenantGrouped(t *testing.T) {
	t.Parallel()
	b, today := setupUsage(t)
	rep := getUsage(t, b, "?group_by=model", "op")
	want := []UsageTotal{
		{Model: "fast", Calls: 6, InputTokens: 60, OutputTokens: 30, CostUSD: 1.5},
		{Model: "smart", Calls: 1, InputTokens: 10, OutputTokens: 5, CostUSD: 0.25},
	}
	if !slices.Equal(rep.Rows, want) || rep.Total.Calls != 7 || rep.Total.CostUSD != 1.75 || rep.To != today {
		t.Fatalf("report = %+v\nwant rows %+v, 7 calls, $1.75, to %s (the 2020 row is outside the default week)", rep, want, today)
	}
	rep = getUsage(t, b, "?from=2020-01-01&to=2020-01-01&group_by=tenant,day", "op")
	if len(rep.Rows) != 1 || rep.Rows[0] != (UsageTotal{Day: "2020-01-01", Tenant: "acme", Calls: 100, InputTokens: 1000, OutputTokens: 500, CostUSD: 25}) {
		t.Fatalf("2020 by tenant and day = %+v", rep.Rows)
	}
	if rep := getUsage(t, b, "?task=classify", ""); rep.Total.Calls != 1 {
		t.Fatalf("open API, task classify = %+v, want 1 call", rep)
	}
}

func TestUsageTenantSeesItsOwn(t *testing.T) {
	t.Parallel()
	b, _ := setupUsage(t)
	rep := getUsage(t, b, "?group_by=tenant", "acme")
	if rep.Tenant != "acme" || len(rep.Rows) != 1 || rep.Rows[0].Tenant != "acme" || rep.Total.Calls != 3 {
		t.Fatalf("acme's report = %+v, want its 3 calls only", rep)
	}
	resp := b.do(t, http.MethodGet, "/v1/usage?tenant=globex", "", principalHeader+": acme")
	readProblem(t, resp, http.StatusForbidden, SlugForbidden)
}

func TestUsageBadQueryListsEveryProblem(t *testing.T) {
	t.Parallel()
	b, _ := setupUsage(t)
	p := readProblem(t, b.do(t, http.MethodGet, "/v1/usage?from=yesterday&to=2026-13-01&group_by=model,region", "", principalHeader+": op"),
		http.StatusBadRequest, SlugInvalidQuery)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, []string{"from", "group_by", "to"}) {
		t.Fatalf("problems name %v, want from, group_by and to", fields)
	}
	p = readProblem(t, b.do(t, http.MethodGet, "/v1/usage?from=2026-12-05&to=2026-12-01", "", principalHeader+": op"),
		http.StatusBadRequest, SlugInvalidQuery)
	if len(p.Errors) != 1 || p.Errors[0].Field != "from" {
		t.Fatalf("from after to: %+v", p.Errors)
	}
}
