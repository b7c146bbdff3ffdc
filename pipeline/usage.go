package pipeline

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// UsageDayLayout is how a UsageRow names its UTC day.
const UsageDayLayout = "2006-01-02"

// UsageDay returns the UTC day holding t, as UsageRow.Day names it. The last day formatted is
// kept: a worker asks for today's for every model call.
func UsageDay(t time.Time) string {
	unix := t.Unix()
	day := unix / 86400
	if unix < 0 && unix%86400 != 0 {
		day-- // the day before the epoch's, not the one after
	}
	if last := lastUsageDay.Load(); last != nil && last.day == day {
		return last.name
	}
	name := t.UTC().Format(UsageDayLayout)
	lastUsageDay.Store(&usageDay{day: day, name: name})
	return name
}

// usageDay is a UTC day, by its number since the epoch and its name.
type usageDay struct {
	day  int64
	name string
}

var lastUsageDay atomic.Pointer[usageDay]

// UsageRow is the model usage of one tenant, model and task on one UTC day: counters that
// only ever grow by addition. Tenant is "" when auth is off; Task "" for calls made for no
// task.
type UsageRow struct {
	Day    string `json:"day"`
	Tenant string `json:"tenant"`
	Model  string `json:"model"`
	Task   string `json:"task"`
	// Calls counts answered model calls.
	Calls        int64 `json:"calls"`
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// CostNanoUSD is the estimated cost in billionths of a US dollar (integers add exactly).
	CostNanoUSD int64 `json:"cost_nano_usd"`
}

// UsageKey is what identifies a UsageRow: its day, tenant, model and task.
type UsageKey struct{ Day, Tenant, Model, Task string }

// Key returns r's UsageKey.
func (r UsageRow) Key() UsageKey { return UsageKey{r.Day, r.Tenant, r.Model, r.Task} }

// Add adds o's counters to r's.
func (r *UsageRow) Add(o UsageRow) {
	r.Calls += o.Calls
	r.InputTokens += o.InputTokens
	r.OutputTokens += o.OutputTokens
	r.CostNanoUSD += o.CostNanoUSD
}

// UsageFilter selects usage rows: the days From to To (inclusive, UsageDayLayout), and, when
// set, one tenant, model or task.
type UsageFilter struct {
	From, To            string
	Tenant, Model, Task string
}

// MaxUsageDays bounds the days one UsageFilter may span.
const MaxUsageDays = 366

// UsageStore keeps model usage per day, tenant, model and task where every process of a fleet
// adds to the same counters, so the figures survive restarts and are the fleet's. It is an
// optional ability of a LimitStore, found by type assertion. Implementations are safe for
// concurrent use, also by several processes sharing the store.
type UsageStore interface {
	// AddUsage adds each row's counters to the stored row of the same key (creating it), each
	// row atomically; rows of one call may land one by one. It is not idempotent: a retried
	// call after an error may count some rows twice.
	AddUsage(ctx context.Context, rows []UsageRow) error
	// Usage returns the stored rows that f selects, in no particular order. f.From and f.To
	// are valid days no more than MaxUsageDays apart.
	Usage(ctx context.Context, f UsageFilter) ([]UsageRow, error)
}

// Usage groupings accepted by GroupUsage.
const (
	UsageByDay    = "day"
	UsageByTenant = "tenant"
	UsageByModel  = "model"
	UsageByTask   = "task"
)

// GroupUsage sums rows over every key part not named in by (a subset of UsageByDay,
// UsageByTenant, UsageByModel, UsageByTask); the parts summed over are "" in the result. The
// result is sorted by day, tenant, model and task.
func GroupUsage(rows []UsageRow, by []string) []UsageRow {
	keep := map[string]bool{}
	for _, b := range by {
		keep[b] = true
	}
	sums := map[UsageKey]*UsageRow{}
	for _, r := range rows {
		k := r.Key()
		if !keep[UsageByDay] {
			k.Day = ""
		}
		if !keep[UsageByTenant] {
			k.Tenant = ""
		}
		if !keep[UsageByModel] {
			k.Model = ""
		}
		if !keep[UsageByTask] {
			k.Task = ""
		}
		s := sums[k]
		if s == nil {
			s = &UsageRow{Day: k.Day, Tenant: k.Tenant, Model: k.Model, Task: k.Task}
			sums[k] = s
		}
		s.Add(r)
	}
	out := make([]UsageRow, 0, len(sums))
	for _, s := range sums {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b UsageRow) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Model, b.Model), cmp.Compare(a.Task, b.Task))
	})
	return out
}

// UsageDays lists the days from f.From to f.To, both included.
func UsageDays(f UsageFilter) []string {
	from, err1 := time.Parse(UsageDayLayout, f.From)
	to, err2 := time.Parse(UsageDayLayout, f.To)
	if err1 != nil || err2 != nil {
		return nil
	}
	var days []string
	for d := from; !d.After(to) && len(days) <= MaxUsageDays; d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(UsageDayLayout))
	}
	return days
}

// USDToNano converts US dollars to billionths, rounding to the nearest.
func USDToNano(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

// NanoToUSD converts billionths of a US dollar to dollars.
func NanoToUSD(n int64) float64 { return float64(n) / 1e9 }
