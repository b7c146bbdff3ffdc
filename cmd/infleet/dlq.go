package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/infleet/infleet/pipeline/ops"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runDLQ(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: infleet dlq list [--task T] [--reason R] [--since 2h]\n"+
			"       infleet dlq show JOB_ID\n"+
			"       infleet dlq redrive (--job ID ... | --task T | --reason R | --all)\n\n"+
			"Dead letters are jobs that ran out of attempts or can never succeed, kept with their\n"+
			"reason. redrive sends them back to their priority's queue with attempts reset; it is\n"+
			"idempotent. Each subcommand takes --server (env INFLEET_SERVER) and --help.")
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	switch args[0] {
	case "list":
		return dlqList(args[1:], stdout, stderr)
	case "show":
		return dlqShow(args[1:], stdout, stderr)
	case "redrive":
		return dlqRedrive(args[1:], stdout, stderr)
	}
	return usageError(stderr, "dlq", "unknown subcommand %q (use list, show or redrive)", args[0])
}

// dlqFilterFlags are the filters list and redrive share.
type dlqFilterFlags struct {
	task, reason, since *string
}

func addDLQFilters(fs *flag.FlagSet) dlqFilterFlags {
	return dlqFilterFlags{
		task:   fs.String("task", "", "only dead letters of this task"),
		reason: fs.String("reason", "", "only dead letters whose error code or reason contains this"),
		since:  fs.String("since", "", "only dead letters newer than this (a duration such as 2h, or an RFC 3339 time)"),
	}
}

func (f dlqFilterFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"task": *f.task, "reason": *f.reason, "since": *f.since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// fetchDeadLetters lists dead letters through the API.
func fetchDeadLetters(c *apiClient, q url.Values) ([]ops.DeadLetter, int, []byte, error) {
	status, body, err := c.do(context.Background(), http.MethodGet, "/v1/dead-letters?"+q.Encode(), nil, nil)
	if err != nil || status != http.StatusOK {
		return nil, status, body, err
	}
	var out struct {
		DeadLetters []ops.DeadLetter `json:"dead_letters"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, status, body, fmt.Errorf("the API answered something that is not a dead-letter list: %w", err)
	}
	return out.DeadLetters, status, body, nil
}

func dlqList(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dlq list", "[flags]", "Lists dead letters, one line each: job id, task, attempts, reason.", stderr)
	server := addServerFlag(fs)
	filters := addDLQFilters(fs)
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	dls, status, body, err := fetchDeadLetters(newAPIClient(*server), filters.query())
	if err != nil {
		fmt.Fprintln(stderr, "infleet dlq list:", err)
		return 1
	}
	if status != http.StatusOK {
		return reportHTTP(stdout, stderr, status, body)
	}
	for _, dl := range dls {
		fmt.Fprintf(stdout, "%s\t%s\t%d\t%s\n", orDash(dl.JobID), orDash(dl.Task), dl.Attempts, oneLine(dl.Reason))
	}
	fmt.Fprintf(stderr, "%d dead letters\n", len(dls))
	return 0
}

func dlqShow(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dlq show", "[flags] JOB_ID", "Shows a job's dead letter (message, reason, attempts) and its job record.", stderr)
	server := addServerFlag(fs)
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if fs.NArg() != 1 {
		return usageError(stderr, "dlq show", "give exactly one job id")
	}
	c := newAPIClient(*server)
	status, body, err := c.do(context.Background(), http.MethodGet, "/v1/dead-letters/"+url.PathEscape(fs.Arg(0)), nil, nil)
	if err != nil {
		fmt.Fprintln(stderr, "infleet dlq show:", err)
		return 1
	}
	if status != http.StatusOK {
		return reportHTTP(stdout, stderr, status, body)
	}
	_, job, _ := c.do(context.Background(), http.MethodGet, "/v1/jobs/"+url.PathEscape(fs.Arg(0)), nil, nil)
	out, _ := json.Marshal(map[string]json.RawMessage{"dead_letter": body, "job": orNull(job)})
	printJSON(stdout, out)
	return 0
}

func dlqRedrive(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dlq redrive", "(--job ID ... | --task T | --reason R | --since D | --all)",
		"Sends dead letters back to their priority's queue with attempts reset, the job back to\n"+
			"QUEUED. Idempotent: a job already queued again is not queued twice.", stderr)
	server := addServerFlag(fs)
	filters := addDLQFilters(fs)
	var jobs stringList
	fs.Var(&jobs, "job", "a job id to redrive (repeatable)")
	all := fs.Bool("all", false, "redrive every dead letter")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	q := filters.query()
	if len(jobs) == 0 && len(q) == 0 && !*all {
		return usageError(stderr, "dlq redrive", "say which dead letters: --job ID, --task, --reason, --since, or --all")
	}
	c := newAPIClient(*server)
	ids := []string(jobs)
	if len(ids) == 0 {
		dls, status, body, err := fetchDeadLetters(c, q)
		if err != nil {
			fmt.Fprintln(stderr, "infleet dlq redrive:", err)
			return 1
		}
		if status != http.StatusOK {
			return reportHTTP(stdout, stderr, status, body)
		}
		seen := map[string]bool{}
		for _, dl := range dls {
			if dl.JobID != "" && !seen[dl.JobID] {
				seen[dl.JobID] = true
				ids = append(ids, dl.JobID)
			}
		}
	}
	var total ops.RedriveResult
	bar := newProgress(stderr, "redrive", len(ids))
	const chunk = 50
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		body, _ := json.Marshal(map[string]any{"job_ids": part})
		status, resp, err := c.do(context.Background(), http.MethodPost, "/v1/dead-letters:redrive", body, nil)
		if err != nil {
			bar.done()
			fmt.Fprintln(stderr, "infleet dlq redrive:", err)
			return 1
		}
		if status != http.StatusOK {
			bar.done()
			return reportHTTP(stdout, stderr, status, resp)
		}
		var res ops.RedriveResult
		_ = json.Unmarshal(resp, &res)
		total.Matched += res.Matched
		total.Redriven += res.Redriven
		total.Skipped += res.Skipped
		total.Kept += res.Kept
		bar.set(start + len(part))
	}
	bar.done()
	fmt.Fprintf(stdout, "matched %d, redriven %d, skipped %d (already queued or finished), kept %d (not jobs)\n",
		total.Matched, total.Redriven, total.Skipped, total.Kept)
	return 0
}

// progress draws a one-line progress bar on w.
type progress struct {
	w     io.Writer
	label string
	total int
	last  time.Time
}

func newProgress(w io.Writer, label string, total int) *progress {
	p := &progress{w: w, label: label, total: total}
	p.set(0)
	return p
}

func (p *progress) set(n int) {
	const width = 30
	filled := width
	if p.total > 0 {
		filled = width * n / p.total
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d", p.label, strings.Repeat("#", filled), strings.Repeat(" ", width-filled), n, p.total)
}

func (p *progress) done() { fmt.Fprintln(p.w) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func orNull(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return json.RawMessage("null")
	}
	return b
}
