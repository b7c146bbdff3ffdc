package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/pipeline"
)

// usageGroups are the values --group-by accepts, as GET /v1/usage names them.
var usageGroups = []string{pipeline.UsageByDay, pipeline.UsageByTenant, pipeline.UsageByModel, pipeline.UsageByTask}

// runUsage is `infleet usage`: GET /v1/usage as a table, or its JSON with --json.
func runUsage(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("usage", "[flags]",
		"Prints model usage and estimated spend (calls, input and output tokens, cost) per UTC day, tenant,\n"+
			"model and task, from GET /v1/usage: the whole fleet's, as the job store keeps it. Operators see\n"+
			"every tenant; other keys their own tenant (INFLEET_API_KEY).", stderr)
	server := addServerFlag(fs)
	from := fs.String("from", "", "first UTC day, YYYY-MM-DD (default 6 days before --to)")
	to := fs.String("to", "", "last UTC day, YYYY-MM-DD, included (default today)")
	tenant := fs.String("tenant", "", "only this tenant's usage")
	model := fs.String("model", "", "only this model's usage")
	task := fs.String("task", "", "only this task's usage")
	groupBy := fs.String("group-by", strings.Join(usageGroups, ","), "key parts to keep, comma-separated, among "+strings.Join(usageGroups, ", ")+"; the rest are summed")
	asJSON := fs.Bool("json", false, "print the API's JSON instead of a table")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q (usage takes flags only)", fs.Arg(0)))
	}
	for _, d := range []struct{ flag, v string }{{"--from", *from}, {"--to", *to}} {
		if _, err := time.Parse(pipeline.UsageDayLayout, d.v); d.v != "" && err != nil {
			problems = append(problems, fmt.Sprintf("%s %q is not a UTC day; write it as YYYY-MM-DD, such as 2026-12-05", d.flag, d.v))
		}
	}
	for g := range strings.SplitSeq(*groupBy, ",") {
		if g = strings.TrimSpace(g); !slices.Contains(usageGroups, g) {
			problems = append(problems, fmt.Sprintf("--group-by %q: use some of %s, comma-separated", g, strings.Join(usageGroups, ", ")))
		}
	}
	if len(problems) > 0 {
		return usageError(stderr, "usage", "%s", strings.Join(problems, "; "))
	}
	q := url.Values{}
	for k, v := range map[string]string{"from": *from, "to": *to, "tenant": *tenant, "model": *model, "task": *task, "group_by": *groupBy} {
		if v != "" {
			q.Set(k, v)
		}
	}
	status, body, err := newAPIClient(*server).do(context.Background(), http.MethodGet, "/v1/usage?"+q.Encode(), nil, nil)
	if err != nil {
		fmt.Fprintln(stderr, "infleet usage:", err)
		return 1
	}
	if *asJSON || status != http.StatusOK {
		return reportHTTP(stdout, stderr, status, body)
	}
	var rep handlers.UsageReport
	if err := json.Unmarshal(body, &rep); err != nil {
		fmt.Fprintf(stderr, "infleet usage: the server's answer is not a usage report (is --server an infleet API?): %v\n", err)
		return 1
	}
	printUsage(stdout, rep)
	return 0
}

// printUsage writes rep as a table: one column per group, then the sums, and a total line.
func printUsage(w io.Writer, rep handlers.UsageReport) {
	scope := "every tenant"
	if rep.Tenant != "" {
		scope = "tenant " + rep.Tenant
	}
	fmt.Fprintf(w, "Usage from %s to %s (UTC), %s\n\n", rep.From, rep.To, scope)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	cells := func(r handlers.UsageTotal) []string {
		var c []string
		for _, g := range rep.GroupBy {
			c = append(c, map[string]string{pipeline.UsageByDay: r.Day, pipeline.UsageByTenant: r.Tenant,
				pipeline.UsageByModel: r.Model, pipeline.UsageByTask: r.Task}[g]+"\t")
		}
		return append(c, fmt.Sprintf("%d\t%d\t%d\t%.4f\t", r.Calls, r.InputTokens, r.OutputTokens, r.CostUSD))
	}
	var head []string
	for _, g := range rep.GroupBy {
		head = append(head, strings.ToUpper(g)+"\t")
	}
	fmt.Fprintln(tw, strings.Join(append(head, "CALLS\tINPUT TOKENS\tOUTPUT TOKENS\tCOST USD\t"), ""))
	for _, r := range rep.Rows {
		fmt.Fprintln(tw, strings.Join(cells(r), ""))
	}
	total := cells(rep.Total)
	if len(rep.GroupBy) > 0 {
		total[0] = "TOTAL\t"
	}
	fmt.Fprintln(tw, strings.Join(total, ""))
	_ = tw.Flush()
}
