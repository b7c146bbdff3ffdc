package handlers

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// DefaultUsageDays is how many days GET /v1/usage covers when the query sets no from.
const DefaultUsageDays = 7

// UsageReport is the answer of GET /v1/usage: the usage of the days From to To (UTC,
// inclusive), summed over every key part not in GroupBy, with its Total.
type UsageReport struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	GroupBy []string `json:"group_by"`
	// Tenant is the tenant the report is limited to, when it is.
	Tenant string       `json:"tenant,omitempty"`
	Rows   []UsageTotal `json:"rows"`
	Total  UsageTotal   `json:"total"`
}

// UsageTotal is one row of a UsageReport: the key parts it is grouped by, and its sums.
type UsageTotal struct {
	Day          string  `json:"day,omitempty"`
	Tenant       string  `json:"tenant,omitempty"`
	Model        string  `json:"model,omitempty"`
	Task         string  `json:"task,omitempty"`
	Calls        int64   `json:"calls"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CostUSD      float64 `json:"cost_usd"`
}

func usageTotal(r pipeline.UsageRow) UsageTotal {
	return UsageTotal{Day: r.Day, Tenant: r.Tenant, Model: r.Model, Task: r.Task, Calls: r.Calls,
		InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, CostUSD: pipeline.NanoToUSD(r.CostNanoUSD)}
}

// usageGroups are the group_by values GET /v1/usage accepts, in the order rows are sorted.
var usageGroups = []string{pipeline.UsageByDay, pipeline.UsageByTenant, pipeline.UsageByModel, pipeline.UsageByTask}

// addUsageRoute registers GET /v1/usage: an operator (or anyone on an open API) sees every
// tenant's usage; any other caller its own tenant's only (403 for another tenant).
func (a *api) addUsageRoute(store pipeline.UsageStore) {
	a.mux.HandleFunc("GET /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var problems []FieldProblem
		day := func(name, def string) string {
			v := q.Get(name)
			if v == "" {
				return def
			}
			if _, err := time.Parse(pipeline.UsageDayLayout, v); err != nil {
				problems = append(problems, FieldProblem{Field: name, Message: "must be a UTC day, YYYY-MM-DD, such as 2026-12-05"})
			}
			return v
		}
		now := time.Now().UTC()
		f := pipeline.UsageFilter{
			To:     day("to", pipeline.UsageDay(now)),
			Tenant: q.Get("tenant"), Model: q.Get("model"), Task: q.Get("task"),
		}
		if to, err := time.Parse(pipeline.UsageDayLayout, f.To); err == nil {
			f.From = day("from", pipeline.UsageDay(to.AddDate(0, 0, 1-DefaultUsageDays)))
		} else {
			f.From = day("from", f.To)
		}
		from, err1 := time.Parse(pipeline.UsageDayLayout, f.From)
		to, err2 := time.Parse(pipeline.UsageDayLayout, f.To)
		if err1 == nil && err2 == nil {
			switch {
			case from.After(to):
				problems = append(problems, FieldProblem{Field: "from", Message: "must not be after to"})
			case to.Sub(from) >= pipeline.MaxUsageDays*24*time.Hour:
				problems = append(problems, FieldProblem{Field: "from", Message: "must be at most 366 days before to; ask for a shorter range"})
			}
		}
		groupBy := slices.Clone(usageGroups)
		if v := q.Get("group_by"); v != "" {
			groupBy = nil
			for g := range strings.SplitSeq(v, ",") {
				g = strings.TrimSpace(g)
				if !slices.Contains(usageGroups, g) {
					problems = append(problems, FieldProblem{Field: "group_by", Message: "must list some of day, tenant, model and task, comma-separated; got " + g})
					continue
				}
				if !slices.Contains(groupBy, g) {
					groupBy = append(groupBy, g)
				}
			}
		}
		if len(problems) > 0 {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery, "fix the query parameters listed in errors", problems...))
			return
		}
		if p, ok := PrincipalFromContext(r.Context()); ok && !p.Operator {
			if f.Tenant != "" && f.Tenant != p.Tenant {
				writeProblem(w, r, newProblem(http.StatusForbidden, SlugForbidden,
					"a tenant sees its own usage only; leave tenant out, or use a key or token with the operator role"))
				return
			}
			f.Tenant = p.Tenant
		}
		rows, err := store.Usage(r.Context(), f)
		if err != nil {
			a.failed(w, r, err, "")
			return
		}
		rep := UsageReport{From: f.From, To: f.To, GroupBy: groupBy, Tenant: f.Tenant, Rows: []UsageTotal{}}
		var total pipeline.UsageRow
		for _, row := range pipeline.GroupUsage(rows, groupBy) {
			total.Add(row)
			rep.Rows = append(rep.Rows, usageTotal(row))
		}
		rep.Total = usageTotal(total)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, marshalJSON(rep))
	})
}
