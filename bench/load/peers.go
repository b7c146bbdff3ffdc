package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Targets from the issue for the burn-down beside the peers.
const (
	targetRiverRatio    = 1.0  // infleet jobs/s over River's at FetchCooldown 1 ms, 0 ms model
	targetAsynqRatio    = 1.5  // infleet jobs/s over asynq's, 0 ms model
	targetBurndownShare = 0.96 // of workers/0.1 s, 100 ms model
)

// peerResultBytes is the size of the result each peer job stores: the ~200-byte results of
// the peers' workload.
const peerResultBytes = 200

// peersDir is where the peer programs live, relative to the repository root.
const peersDir = "bench/peers"

// peerSpec is one peer configuration the burn-down measures.
type peerSpec struct {
	key  string   // short name, for logs and files
	name string   // what the rows call it
	args []string // subcommand and its own flags
	skip string   // why it cannot run here ("" when it can)
}

// peerResult is the JSON line a peer program prints (bench/peers, type result).
type peerResult struct {
	Peer              string            `json:"peer"`
	Version           string            `json:"version"`
	Jobs              int               `json:"jobs"`
	Workers           int               `json:"workers"`
	TaskMS            int64             `json:"task_ms"`
	Seconds           float64           `json:"seconds"`
	JobsPerSec        float64           `json:"jobs_per_sec"`
	SteadyJobsPerSec  float64           `json:"steady_jobs_per_sec"`
	FirstSeconds      float64           `json:"first_completion_seconds"`
	FirstCount        int               `json:"first_count"`
	EnqueueSeconds    float64           `json:"enqueue_seconds"`
	StoredResultBytes int               `json:"stored_result_bytes"`
	Settings          map[string]string `json:"settings"`
	// CPUSeconds is what the peer's process used from the first completion seen to the last,
	// ServerCPUSeconds what its server's processes used meanwhile (nil or -1: unknown).
	CPUSeconds       float64  `json:"cpu_seconds"`
	ServerCPUSeconds *float64 `json:"server_cpu_seconds"`
}

// peerCPU is what a peer's run cost in CPU per job, from the first completion seen to the
// last: its own process's and its server's, and the share of all CPUs both used.
type peerCPU struct {
	self, server time.Duration
	share        float64
}

// total is the peer's and its server's CPU per job.
func (c peerCPU) total() time.Duration { return c.self + c.server }

// cpuPerJob is r's CPU per job; ok is false when the server's processes could not be read
// (a server on another machine) or the window is empty.
func (r peerResult) cpuPerJob() (peerCPU, bool) {
	jobs, window := r.Jobs-r.FirstCount, r.Seconds-r.FirstSeconds
	if r.ServerCPUSeconds == nil || *r.ServerCPUSeconds < 0 || jobs <= 0 || window <= 0 {
		return peerCPU{}, false
	}
	server := *r.ServerCPUSeconds
	per := func(s float64) time.Duration { return time.Duration(s / float64(jobs) * float64(time.Second)) }
	return peerCPU{self: per(r.CPUSeconds), server: per(server),
		share: (r.CPUSeconds + server) / window / float64(runtime.NumCPU())}, true
}

// peerOutcome is what one peer run gave: a result, a reason it was skipped, or an error.
type peerOutcome struct {
	spec peerSpec
	res  peerResult
	skip string
	err  error
}

func (o peerOutcome) ok() bool { return o.skip == "" && o.err == nil }

// peerSpecs are the peers measured beside infleet's burn-down: River + PostgreSQL at its default
// FetchCooldown and at 1 ms, and asynq + Redis.
func (h *harness) peerSpecs() []peerSpec {
	dsn, redis := os.Getenv("INFLEET_TEST_POSTGRES_DSN"), os.Getenv("INFLEET_TEST_REDIS_ADDR")
	river := func(key, name, cooldown string) peerSpec {
		s := peerSpec{key: key, name: name, args: []string{"river", "-dsn", dsn, "-fetch-cooldown", cooldown}}
		if dsn == "" {
			s.skip = "INFLEET_TEST_POSTGRES_DSN unset (run under .ci/peers/with-postgres.sh; make bench-load does)"
		}
		return s
	}
	specs := []peerSpec{
		river("river-default", "River + PostgreSQL at FetchCooldown 100 ms, River's default", "100ms"),
		river("river-1ms", "River + PostgreSQL at FetchCooldown 1 ms", "1ms"),
		{key: "asynq", name: "asynq + Redis", args: []string{"asynq", "-redis", redis}},
	}
	if redis == "" {
		specs[2].skip = "INFLEET_TEST_REDIS_ADDR unset (run under .ci/peers/with-redis.sh; make bench-load does)"
	}
	for i := range specs {
		if !h.opts.peers {
			specs[i].skip = "-peers=false"
		}
	}
	return specs
}

// repoRoot finds the infleet repository above the working directory: the directory holding
// bench/peers/go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, peersDir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no %s/go.mod in %s or above it: run the harness from the infleet repository, or pass -peers=false", peersDir, wd)
		}
	}
}

// buildPeers builds the peer programs (their own module, bench/peers) once per run and returns
// the binary's path.
func (h *harness) buildPeers(ctx context.Context) (string, error) {
	if h.peersBin != "" || h.peersErr != nil {
		return h.peersBin, h.peersErr
	}
	h.peersErr = func() error {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		bin := filepath.Join(h.tmp, "peers")
		h.progress("building the peer programs (%s, their own module; the first build downloads River, pgx and asynq)", peersDir)
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
		cmd.Dir = filepath.Join(root, peersDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s (go build in %s): %v\n%s\n(-peers=false skips the peers)", peersDir, cmd.Dir, err, strings.TrimSpace(string(out)))
		}
		h.progress("  built %s in %s", bin, time.Since(start).Round(time.Millisecond))
		h.peersBin = bin
		return nil
	}()
	return h.peersBin, h.peersErr
}

// runPeers runs every peer on the burn-down workload with the given task latency, one after the
// other. A peer whose service is absent is skipped; one that fails is an outcome with an error.
func (h *harness) runPeers(ctx context.Context, latency time.Duration) []peerOutcome {
	var outs []peerOutcome
	for _, s := range h.peerSpecs() {
		o := peerOutcome{spec: s, skip: s.skip}
		if o.skip == "" {
			h.settle()
			o.res, o.err = h.runPeer(ctx, s, latency)
			if o.err != nil {
				h.progress("  %s: %v", s.name, o.err)
			}
		}
		outs = append(outs, o)
	}
	return outs
}

// runPeer runs one peer program as a child process with the burn-down's job count and workers.
func (h *harness) runPeer(ctx context.Context, s peerSpec, latency time.Duration) (peerResult, error) {
	var res peerResult
	bin, err := h.buildPeers(ctx)
	if err != nil {
		return res, err
	}
	n, w := h.opts.burndownJobs, h.opts.concurrency
	timeout := jobTimeout(n) + time.Duration(float64(n)/float64(w)*float64(latency))
	args := append(append([]string(nil), s.args...), "-jobs", fmt.Sprint(n), "-workers", fmt.Sprint(w),
		"-task", latency.String(), "-result-bytes", fmt.Sprint(peerResultBytes), "-timeout", timeout.String())
	logPath := filepath.Join(h.tmp, fmt.Sprintf("peer-%s-%dms.log", s.key, latency.Milliseconds()))
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, fmt.Errorf("create the peer's log: %w", err)
	}
	defer logFile.Close()
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, logFile
	cmd.WaitDelay = 10 * time.Second
	setParentDeath(cmd)
	h.progress("started %s: %s %s", s.name, filepath.Base(bin), strings.Join(redact(args), " "))
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("%s %s: %v; its log (%s) ends:\n%s", filepath.Base(bin), s.args[0], err, logPath, fileTail(logPath))
	}
	line := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return res, fmt.Errorf("%s printed %q, not a JSON result: %w", s.name, snippet([]byte(line)), err)
	}
	if res.Jobs != n || res.SteadyJobsPerSec <= 0 || res.JobsPerSec <= 0 {
		return res, fmt.Errorf("%s reported %d jobs at %.0f jobs/s (steady %.0f); want %d jobs and positive rates", s.name, res.Jobs, res.JobsPerSec, res.SteadyJobsPerSec, n)
	}
	h.progress("  %s: %.0f jobs/s steady, %.0f from the workers' start (%.2fs); enqueued in %.2fs",
		s.name, res.SteadyJobsPerSec, res.JobsPerSec, res.Seconds, res.EnqueueSeconds)
	if c, ok := res.cpuPerJob(); ok {
		h.progress("  %s used %s CPU per job (its process %s, its server %s), %.0f%% of the CPUs",
			s.name, c.total().Round(time.Microsecond/10), c.self.Round(time.Microsecond/10), c.server.Round(time.Microsecond/10), c.share*100)
	}
	return res, nil
}

// redact replaces the value of -dsn, which may hold a password, for printing.
func redact(args []string) []string {
	out := slices.Clone(args)
	for i := range len(out) - 1 {
		if out[i] == "-dsn" {
			out[i+1] = "$INFLEET_TEST_POSTGRES_DSN"
		}
	}
	return out
}

// fileTail returns the last lines of a log file.
func fileTail(path string) string {
	p := proc{logPath: path}
	return p.logTail()
}

// peerSetup describes how a peer's figure was measured.
func peerSetup(o peerOutcome, n, w int, latency time.Duration) string {
	r, st := o.res, o.res.Settings
	how := fmt.Sprintf("%s jobs enqueued first, then %d workers started, %d ms task, %d-byte JSON result stored per job; `bench/peers %s` (a child process of the harness, %s) on this machine",
		thousands(float64(n)), w, latency.Milliseconds(), peerResultBytes, o.spec.args[0], r.Version)
	switch r.Peer {
	case "river":
		how += fmt.Sprintf("; PostgreSQL %s with fsync %s, synchronous_commit %s (durable), a fresh database per run with River's migrations, pgx pool of %s; FetchCooldown %s, FetchPollInterval %s; jobs inserted with InsertMany (5,000 a call); each job records its result with river.RecordOutput (%d B in the job's metadata); a job counts when River's event subscription reports it completed (after the completer's write)",
			st["postgres_server_version"], st["postgres_fsync"], st["postgres_synchronous_commit"], st["pool_max_conns"],
			st["fetch_cooldown"], st["fetch_poll_interval"], r.StoredResultBytes)
	case "asynq":
		how += fmt.Sprintf("; Redis %s with persistence off (save %s, appendonly %s: not durable), queue flushed first; tasks enqueued by %s parallel clients; each task writes its result with its ResultWriter, kept by Retention %s (%d B); a task counts when it is in the queue's completed set",
			st["redis_version"], st["redis_save"], map[string]string{"0": "no", "1": "yes"}[st["redis_aof_enabled"]], st["enqueue_clients"], st["retention"], r.StoredResultBytes)
	}
	return how + "; jobs/s from the first completion seen to the last (polled every 50 ms, 5 ms for the last 5%, as infleet's /metrics), in brackets from the workers' start"
}

// peerRows reports the peers of one model latency beside infleet's figure (jobs/s for the 0 ms
// model, the share of the workers/latency limit for the 100 ms one) and their ratios.
func peerRows(outs []peerOutcome, latency time.Duration, n, w int, infleetRate float64) []row {
	model := fmt.Sprintf("%d ms model", latency.Milliseconds())
	limit := 0.0
	if latency > 0 {
		limit = float64(w) / latency.Seconds()
	}
	ratioSetup := fmt.Sprintf("ratio of the jobs/s from the first completion seen to the last of infleet's %s run above (embedded default at durability process: writes handed to the OS, not fsynced) and of the peer's row above, run one after the other in this run", model)
	var rows, ratios []row
	for _, o := range outs {
		measure := model + ": " + o.spec.name
		switch {
		case o.skip != "":
			rows = append(rows, row{Scenario: "burndown", Measure: measure + ": not run", Result: "skipped", Setup: o.skip})
			continue
		case o.err != nil:
			rows = append(rows, row{Scenario: "burndown", Measure: measure, Result: "ERROR: " + oneLine(o.err.Error()), Verdict: verdictError})
			continue
		}
		setup := peerSetup(o, n, w, latency)
		rate := o.res.SteadyJobsPerSec
		if limit == 0 {
			rows = append(rows, row{Scenario: "burndown", Measure: measure + ": jobs/s", Verdict: verdictMeasured, Setup: setup,
				Result: fmt.Sprintf("%s jobs/s (%s from the workers' start)", thousands(rate), thousands(o.res.JobsPerSec))})
			r := row{Scenario: "burndown", Measure: fmt.Sprintf("%s: infleet / %s", model, o.spec.name), Setup: ratioSetup,
				Result: fmt.Sprintf("%.2f× (%s / %s jobs/s)", infleetRate/rate, thousands(infleetRate), thousands(rate))}
			if target, ok := targetPeers[o.spec.key]; ok {
				r.Target, r.Verdict = fmt.Sprintf(">= %.1f×", target), judge(infleetRate/rate >= target)
			}
			ratios = append(ratios, r)
			continue
		}
		rows = append(rows, row{Scenario: "burndown", Measure: fmt.Sprintf("%s: share of the %s/s limit: %s", model, thousands(limit), o.spec.name),
			Verdict: verdictMeasured, Setup: setup,
			Result: fmt.Sprintf("%.1f%% (%s jobs/s; %.1f%% from the workers' start)", rate/limit*100, thousands(rate), o.res.JobsPerSec/limit*100)})
		ratios = append(ratios, row{Scenario: "burndown", Measure: fmt.Sprintf("%s: infleet / %s (shares of the limit)", model, o.spec.name), Setup: ratioSetup,
			Result: fmt.Sprintf("%.2f× (%.1f%% / %.1f%%)", infleetRate/rate, infleetRate/limit*100, rate/limit*100)})
	}
	return append(rows, ratios...)
}

// peersFailed returns an error naming the peers that could not run, or nil.
func peersFailed(outs []peerOutcome) error {
	var names []string
	for _, o := range outs {
		if o.err != nil {
			names = append(names, o.spec.name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return errors.New("could not measure " + strings.Join(names, "; ") + " (their rows say why; -peers=false skips the peers)")
}

// outcome returns the outcome of the peer with the given key, if it ran.
func outcome(outs []peerOutcome, key string) (peerOutcome, bool) {
	for _, o := range outs {
		if o.spec.key == key && o.ok() {
			return o, true
		}
	}
	return peerOutcome{}, false
}

// burndownPostgres burns the backlog down with infleet on Kafka (kfake, in the harness) and the
// PostgreSQL server River runs on, with one `infleet worker` of the burn-down's workers, and
// reports it beside River at FetchCooldown 1 ms. infleet's tables live in the DSN's database;
// River's runs each create their own, so neither sees the other's.
func (h *harness) burndownPostgres(ctx context.Context, outs []peerOutcome) ([]row, error) {
	n, w := h.opts.burndownJobs, h.opts.concurrency
	const measure = "0 ms model: jobs/s (infleet on Kafka + PostgreSQL)"
	skip := func(why string) []row {
		return []row{{Scenario: "burndown", Measure: measure + ": not run", Result: "skipped", Setup: why}}
	}
	switch {
	case !h.opts.peers:
		return skip("-peers=false"), nil
	case !h.split:
		return skip("this binary has no `ingress`/`worker` commands"), nil
	}
	var kind fleetKind
	for _, k := range h.fleetKinds() {
		if k.close != nil {
			defer k.close()
		}
		if k.name == "kafka" {
			kind = k
		}
	}
	if kind.skip != "" {
		return skip(kind.skip), nil
	}
	h.cleanScenario("burndown")
	h.settle()
	rate, err := h.fleetRun(ctx, kind, n, w, 1)
	if err != nil {
		return nil, fmt.Errorf("infleet on Kafka + PostgreSQL: %w", err)
	}
	h.progress("burndown 0 ms, infleet on Kafka + PostgreSQL: %.0f jobs/s", rate)
	durability := "the server's fsync setting (on under make bench-load: INFLEET_PG_DURABLE=1)"
	river, ok := outcome(outs, "river-1ms")
	if ok {
		durability = fmt.Sprintf("PostgreSQL %s with fsync %s, synchronous_commit %s (durable), the same server as River's runs",
			river.res.Settings["postgres_server_version"], river.res.Settings["postgres_fsync"], river.res.Settings["postgres_synchronous_commit"])
	}
	setup := fmt.Sprintf("%s jobs enqueued first by `infleet ingress` (then stopped), burnt down by one `infleet worker` with %d workers, 0 ms sim model, results as files in its data dir; %s; store on %s (infleet's tables in the DSN's database, River's in a database of their own); jobs/s from the first completion seen to the last (/metrics polled every 50 ms)",
		thousands(float64(n)), w, kind.setup, durability)
	rows := []row{{Scenario: "burndown", Measure: measure, Result: thousands(rate) + " jobs/s", Setup: setup}}
	if ok {
		r := river.res.SteadyJobsPerSec
		rows = append(rows, row{Scenario: "burndown", Measure: "0 ms model: infleet on Kafka + PostgreSQL / " + river.spec.name,
			Result: fmt.Sprintf("%.2f× (%s / %s jobs/s)", rate/r, thousands(rate), thousands(r)), Setup: setup})
	}
	return rows, nil
}

// cpuRounds collects, round by round, the CPU per job of infleet's worker and of the peers
// that have a target, each from the first completion seen to the last.
type cpuRounds struct {
	infleet []time.Duration
	peers   map[string][]peerCPU
}

// addInfleet adds a round of infleet's; a zero d (unknown) is left out.
func (c *cpuRounds) addInfleet(d time.Duration) {
	if d > 0 {
		c.infleet = append(c.infleet, d)
	}
}

// addPeer adds a round of the peer key's, when its server could be read.
func (c *cpuRounds) addPeer(key string, r peerResult) {
	if pc, ok := r.cpuPerJob(); ok {
		if c.peers == nil {
			c.peers = map[string][]peerCPU{}
		}
		c.peers[key] = append(c.peers[key], pc)
	}
}

// row reports the medians of the rounds, for infleet and each of specs that has any; ok is
// false when there is nothing to compare.
func (c *cpuRounds) row(specs []peerSpec) (row, bool) {
	if len(c.infleet) == 0 {
		return row{}, false
	}
	us := func(d float64) string { return fmt.Sprintf("%.0f µs", d/float64(time.Microsecond)) }
	durations := func(ds []time.Duration) []float64 {
		out := make([]float64, len(ds))
		for i, d := range ds {
			out[i] = float64(d)
		}
		return out
	}
	parts := []string{"infleet's worker " + us(median(durations(c.infleet)))}
	for _, s := range specs {
		got := c.peers[s.key]
		if len(got) == 0 {
			continue
		}
		var total, self, server, share []float64
		for _, pc := range got {
			total, self, server = append(total, float64(pc.total())), append(self, float64(pc.self)), append(server, float64(pc.server))
			share = append(share, pc.share)
		}
		parts = append(parts, fmt.Sprintf("%s %s (its process %s, its server %s; %.0f%% of the CPUs)",
			s.name, us(median(total)), us(median(self)), us(median(server)), median(share)*100))
	}
	if len(parts) == 1 {
		return row{}, false
	}
	return row{Scenario: "burndown", Measure: "0 ms model: CPU per job, infleet's worker and each peer with its server (median of rounds)",
		Result: strings.Join(parts, "; "), Verdict: verdictMeasured,
		Setup: "CPU time (user and system, /proc/PID/stat) from the first completion seen to the last, over the jobs completed meanwhile: infleet's worker process (its embedded NATS server and SQLite included); a peer's own process (workers and client) and its server's processes on this machine (PostgreSQL's postmaster and every process it forked, or redis-server), read by the peer program at its first and last poll; each round as the jobs/s rows above"}, true
}
