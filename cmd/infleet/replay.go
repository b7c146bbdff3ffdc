package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/infleet/infleet/pipeline/ops"
)

func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", "(--since 2h | --from RFC3339 [--to RFC3339]) [flags]",
		"Re-publishes archived job messages so the jobs run again under the same job ids, each\n"+
			"marked with a replay_name, at a bounded rate and at low priority unless told otherwise.\n"+
			"--dry-run only counts what would be replayed. With --archive NAME it starts an EventBridge\n"+
			"replay of that archive onto notify.eventbridge.bus instead and follows it to its end.", stderr)
	server := addServerFlag(fs)
	since := fs.Duration("since", 0, "replay jobs accepted in the last DURATION (e.g. 2h)")
	from := fs.String("from", "", "replay jobs accepted from this RFC 3339 time")
	to := fs.String("to", "", "... up to this RFC 3339 time (default now)")
	task := fs.String("task", "", "only jobs of this task")
	status := fs.String("status", "", "only jobs whose current status is this (e.g. FAILED)")
	var jobs stringList
	fs.Var(&jobs, "job", "only this job id (repeatable)")
	dryRun := fs.Bool("dry-run", false, "count the jobs that would be replayed; change nothing")
	rate := fs.Float64("rate", ops.DefaultReplayRate, "jobs re-published per second")
	priority := fs.String("priority", "low", "queue of the replayed jobs: high, normal or low")
	name := fs.String("name", "", "replay_name put on the jobs (default replay-<time>; infleet-<time> for --archive)")
	archive := fs.String("archive", "", "replay this EventBridge archive onto notify.eventbridge.bus instead (needs --config)")
	configPath := fs.String("config", os.Getenv("INFLEET_CONFIG"), "YAML config file, read with --archive (env INFLEET_CONFIG)")
	poll := fs.Duration("poll", 2*time.Second, "with --archive, how often to check the replay's progress")
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if *archive != "" {
		return runArchiveReplay(archiveReplay{archive: *archive, configPath: *configPath, since: *since, from: *from, to: *to,
			name: *name, poll: *poll}, os.Environ(), stdout, stderr)
	}
	if (*since == 0) == (*from == "") {
		return usageError(stderr, "replay", "give the time range with --since DURATION or --from TIME [--to TIME]")
	}
	req := map[string]any{"task": *task, "status": *status, "job_ids": []string(jobs), "dry_run": *dryRun,
		"rate": *rate, "priority": *priority, "name": *name}
	if *since > 0 {
		req["since"] = since.String()
	} else {
		req["from"], req["to"] = *from, *to
	}
	body, _ := json.Marshal(req)
	c := newAPIClient(*server)
	code, resp, err := c.do(context.Background(), http.MethodPost, "/v1/replays", body, nil)
	if err != nil {
		fmt.Fprintln(stderr, "infleet replay:", err)
		return 1
	}
	if code != http.StatusOK && code != http.StatusAccepted {
		return reportHTTP(stdout, stderr, code, resp)
	}
	var st ops.ReplayStatus
	if err := json.Unmarshal(resp, &st); err != nil {
		fmt.Fprintln(stderr, "infleet replay: unexpected answer:", err)
		return 1
	}
	if st.DryRun {
		fmt.Fprintf(stdout, "%d jobs would be replayed\n", st.Matched)
		return 0
	}
	bar := newProgress(stderr, "replay "+st.Name, st.Matched)
	for !st.Done {
		time.Sleep(200 * time.Millisecond)
		code, resp, err := c.do(context.Background(), http.MethodGet, "/v1/replays/"+url.PathEscape(st.Name), nil, nil)
		if err != nil || code != http.StatusOK {
			bar.done()
			fmt.Fprintf(stderr, "infleet replay: lost track of replay %s (%v, status %d); it goes on in the server\n", st.Name, err, code)
			return 1
		}
		_ = json.Unmarshal(resp, &st)
		bar.set(st.Published)
	}
	bar.done()
	if st.Error != "" {
		fmt.Fprintf(stderr, "infleet replay: %s\n", st.Error)
	}
	fmt.Fprintf(stdout, "replay %s: %d matched, %d re-published\n", st.Name, st.Matched, st.Published)
	if st.Published < st.Matched {
		return 1
	}
	return 0
}
