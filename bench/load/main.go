// Command load is infleet's load harness. It starts the infleet binary as a child process on a
// fresh temporary data directory with a generated config, drives it over HTTP from this
// process, and prints a markdown table of results (with the setup of every figure) that the
// README can paste. Run `go run ./bench/load -help` for the scenarios and flags.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Exit statuses: a missed target is not a failure; a run that could not measure is.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// scenarioNames lists every scenario in the order "all" runs them.
var scenarioNames = []string{"throughput", "concurrency", "ingress", "memory", "burndown", "fleet", "batching"}

const usageText = `Usage: go run ./bench/load [flags]

Starts bin/infleet as a child process (fresh temporary data directory, generated config,
embedded NATS JetStream, SQLite store and result files, the sim model), drives it over HTTP
from this process and prints a markdown results table on stdout (progress goes to stderr).
Every figure carries its setup; machine facts (CPUs, Go versions) head the table.

Scenarios (-scenario, comma-separated; default all):
  throughput   0 ms model, -throughput-jobs jobs POSTed by -clients keep-alive goroutines;
               jobs/s from the first POST to the last job COMPLETED (seen by polling /metrics'
               infleet_jobs_finished_total every 50 ms, then a sample checked by GET).
               Target >= 6,000 jobs/s on 2 cores.
  concurrency  100 ms model, -concurrency workers, -concurrency-jobs jobs enqueued first by
               'infleet ingress', then burnt down by 'infleet worker' on the same data dir;
               completed jobs/s over the window from the first completion seen to the last,
               as a share of the limit workers/0.1 s. Target >= 95%.
  ingress      accepted POST /v1/jobs per second against a bare net/http handler in this
               process that decodes the same body into messages.Job and answers 202; -rounds
               alternating A/B rounds of -round-time each, median ratio reported: first
               'infleet ingress' alone (no workers; target >= 0.5), then 'infleet serve'
               (0 ms model, workers running in the same process; ratio reported beside it),
               each on a data dir of its own; each round also prints the CPU time the infleet
               process used per accepted POST. Then p50/p99 accept latency of that 'serve' at
               half its measured rate with an open-loop schedule, measured from each
               request's scheduled time (target p99 <= 10 ms); -latency-rate sets another
               rate.
  memory       VmRSS and VmHWM (/proc/PID/status) of 'infleet ingress' holding -memory-jobs
               queued jobs that no worker runs. Target <= 150 MiB.
  burndown     the peers' workload: -burndown-jobs jobs enqueued first, -concurrency workers,
               ~200-byte results, with a 0 ms model and with a 100 ms model; beside the peers
               on the same workload in the same run (bench/peers, built once, run as child
               processes): River + PostgreSQL at FetchCooldown 100 ms (River's default) and
               1 ms, asynq + Redis, run after infleet for each model; infleet / peer ratios
               with the targets (0 ms: >= 1.0x River at 1 ms, >= 1.5x asynq; 100 ms: infleet
               >= 96% of the workers/0.1 s limit). A peer whose server is absent
               (INFLEET_TEST_POSTGRES_DSN, INFLEET_TEST_REDIS_ADDR unset) is skipped. infleet
               on Kafka (kfake) + the same PostgreSQL burns the 0 ms backlog too, beside
               River. -peers=false skips the peers and that run. -peer-rounds N (3) runs
               the 0 ms burn-down, River at 1 ms and asynq N times, alternating whether
               infleet or the peers go first in a round; the targets are then judged on the
               median of the per-round ratios (peers' figures move by a third from run to run
               on a shared machine). Beside them, the CPU per job of infleet's worker and of
               each peer with its server (PostgreSQL's or Redis's processes on this machine),
               median of the rounds.
               The 0 ms run is compared with runs under store.retention = -burndown-retention
               (1s), in which the reaper deletes finished jobs and their result files while the
               workers burn the backlog down: -burndown-rounds (3) rounds of one run each way,
               alternating which goes first; the median per-round ratio is reported.
               It is also compared, the same way, with runs at durability fsync (JetStream
               fsyncs every write, SQLite synchronous=FULL) unless -burndown-fsync=false,
               and with the archive written in the background (archive.write: background)
               against before the ack (the default) unless -burndown-archive=false.
  fleet        end-to-end jobs/s of a fleet: -fleet-jobs jobs enqueued by 'infleet ingress',
               burnt down by 1 and then by 2 'infleet worker' processes (64 workers each,
               0 ms model), on SQS + DynamoDB + S3 (emulators from .ci/peers/with-aws.sh)
               and on Kafka (kfake in this process) + PostgreSQL (.ci/peers/with-postgres.sh);
               a fleet whose peers are not there is reported as skipped.
  batching     model calls per job and tokens per job of -batching-jobs short "tag" jobs
               through 'infleet serve' against fmsim (in this process, 20 ms answers),
               first unbatched and then, the same jobs, with batching at max_items 20.

-quick shrinks every job count and duration for a smoke run (about a minute).
A missed target prints MISSED; the exit status is 1 only when a scenario could not run.
With -profile DIR each child writes a CPU profile there (INFLEET_CPUPROFILE) and, for a
scenario that missed a target, 'go tool pprof -top' (flat and -cum) is printed on stderr.
With -trace DIR each child writes an execution trace there (INFLEET_TRACE), named after the
run and the child's role (burndown-0ms-worker.trace).
If bin/infleet has no ingress/worker commands, the backlog scenarios and the ingress target
fall back to 'serve' and say so in their setup.

Flags:
`

// options are the harness's settings, from flags.
type options struct {
	bin             string
	scenarios       []string
	quick           bool
	clients         int
	concurrency     int
	throughputJobs  int
	concurrencyJobs int
	burndownJobs    int
	// burndownRetention is store.retention of the 0 ms burn-down repeated with deletions.
	burndownRetention time.Duration
	// burndownRounds is how many runs with and without deletions, and at durability process
	// and fsync, are compared.
	burndownRounds int
	// peerRounds is how many rounds of the 0 ms burn-down are run beside the peers that have a
	// target (River at 1 ms, asynq); more than one makes the target ratios medians of
	// per-round ratios.
	peerRounds int
	// burndownFsync repeats the 0 ms burn-down at durability fsync.
	burndownFsync bool
	// burndownArchive repeats the 0 ms burn-down with the archive written in the background.
	burndownArchive bool
	// peers runs the peer programs (bench/peers) and infleet on PostgreSQL beside them in the
	// burn-down.
	peers        bool
	fleetJobs    int
	batchingJobs int
	memoryJobs   int
	rounds       int
	roundTime    time.Duration
	latencyTime  time.Duration
	latencyRate  float64
	profileDir   string
	// traceDir is where each child writes an execution trace (-trace); "" for none.
	traceDir string
	keep     bool
	// dropCaches drops the kernel's cached blocks of the data directory's device when the
	// harness starts (see dropCaches).
	dropCaches bool
	// spread places the run's data directories in a block group of their own (see workDir).
	spread        bool
	timeout       time.Duration
	childLogLevel string
	// childEnv are KEY=VALUE entries added to every child's environment (-child-env), after
	// the harness's own INFLEET_ variables are left out.
	childEnv []string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, rc := parseOptions(args, stderr)
	if rc >= 0 {
		return rc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one ends the harness at once; children die with it
		// (they are started with a parent-death signal where the OS has one).
		<-ctx.Done()
		stop()
	}()
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	defer killAll()

	h, err := newHarness(opts, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return exitFailed
	}
	defer h.close()

	rep := newReport(h.machine)
	failed := false
	for _, name := range opts.scenarios {
		if ctx.Err() != nil {
			rep.add(row{Scenario: name, Measure: "not run", Result: "ERROR: " + stopReason(ctx), Verdict: verdictError})
			failed = true
			continue
		}
		h.progress("== %s", name)
		h.settle()
		start := time.Now()
		rows, err := h.runScenario(ctx, name)
		h.cleanScenario(name)
		rep.add(rows...)
		if err != nil {
			failed = true
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%s)", err, stopReason(ctx))
			}
			h.progress("%s failed: %v", name, err)
			rep.add(row{Scenario: name, Measure: "run", Result: "ERROR: " + oneLine(err.Error()), Verdict: verdictError})
		}
		h.progress("%s took %s", name, time.Since(start).Round(time.Millisecond))
		if slices.ContainsFunc(rows, func(r row) bool { return r.Verdict == verdictMissed }) {
			h.profileTop(name)
		}
	}
	rep.write(stdout)
	if failed {
		fmt.Fprintln(stderr, "load: at least one scenario could not run (see ERROR rows above)")
		return exitFailed
	}
	return exitOK
}

func stopReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "the -timeout for the whole run passed"
	}
	return "interrupted"
}

func parseOptions(args []string, stderr io.Writer) (options, int) {
	var o options
	var scen string
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.bin, "bin", "bin/infleet", "`path` of the infleet binary to start (build it with make build)")
	fs.StringVar(&scen, "scenario", "all", "scenarios to run, comma-separated: all or "+strings.Join(scenarioNames, ","))
	fs.BoolVar(&o.quick, "quick", false, "small job counts and short rounds, for a smoke run")
	fs.IntVar(&o.clients, "clients", 64, "client goroutines (keep-alive connections) for closed-loop submission")
	fs.IntVar(&o.concurrency, "concurrency", 256, "workers.concurrency of the infleet child")
	fs.IntVar(&o.throughputJobs, "throughput-jobs", 0, "jobs in the throughput scenario (default 20000; 2000 with -quick)")
	fs.IntVar(&o.concurrencyJobs, "concurrency-jobs", 0, "jobs in the concurrency scenario (default 10000; 1500 with -quick)")
	fs.IntVar(&o.burndownJobs, "burndown-jobs", 0, "jobs in each burndown run (default 20000; 2000 with -quick)")
	fs.DurationVar(&o.burndownRetention, "burndown-retention", time.Second,
		"store.retention of the 0 ms burn-down repeated with the reaper deleting (sweeps every quarter of it); 0 skips that run")
	fs.IntVar(&o.burndownRounds, "burndown-rounds", 3, "rounds of 0 ms burn-downs with and without -burndown-retention, and at durability process and fsync, alternating which goes first")
	fs.BoolVar(&o.burndownFsync, "burndown-fsync", true, "repeat the 0 ms burn-down at durability fsync and compare it with process (the default)")
	fs.BoolVar(&o.burndownArchive, "burndown-archive", true, "repeat the 0 ms burn-down with archive.write background and compare it with before_ack (the default)")
	fs.IntVar(&o.peerRounds, "peer-rounds", 3, "rounds of the 0 ms burn-down beside River at 1 ms and asynq, alternating which goes first; with more than one the targets are judged on the median per-round ratio")
	fs.BoolVar(&o.peers, "peers", true, "measure River + PostgreSQL and asynq + Redis (bench/peers), and infleet on PostgreSQL, beside the burn-down")
	fs.IntVar(&o.fleetJobs, "fleet-jobs", 0, "jobs in each fleet run (default 5000; 500 with -quick)")
	fs.IntVar(&o.batchingJobs, "batching-jobs", 0, "jobs in each run of the batching scenario, unbatched and batched (default 2000; 400 with -quick)")
	fs.IntVar(&o.memoryJobs, "memory-jobs", 0, "queued jobs in the memory scenario (default 100000; 5000 with -quick)")
	fs.IntVar(&o.rounds, "rounds", 3, "A/B rounds in the ingress scenario")
	fs.DurationVar(&o.roundTime, "round-time", 0, "length of each ingress round, per side (default 5s; 1s with -quick)")
	fs.DurationVar(&o.latencyTime, "latency-time", 0, "length of the open-loop latency phase (default 10s; 2s with -quick)")
	fs.Float64Var(&o.latencyRate, "latency-rate", 0, "requests/s of the open-loop latency phase (default half the measured infleet serve rate)")
	fs.StringVar(&o.profileDir, "profile", "", "`dir`ectory for CPU profiles of the children (INFLEET_CPUPROFILE); default none")
	fs.StringVar(&o.traceDir, "trace", "", "`dir`ectory for execution traces of the children (INFLEET_TRACE; `go tool trace FILE`), one per run and role; default none")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary data directories, configs and child logs")
	fs.BoolVar(&o.dropCaches, "drop-caches", true, "at the start, write back dirty pages and drop the clean cached blocks of the data directory's device (inode tables, bitmaps; the whole page cache when the device cannot be opened), so that files deleted in the minutes before the run do not slow its creates (ext4 without a journal); needs root, else it says so and goes on")
	fs.BoolVar(&o.spread, "spread", true, "mark the working directory's parent as the top of a directory hierarchy (chattr +T), so that ext4 places the run's data directories in a block group of their own, away from the files builds and tests create and delete in the temporary directory; on ext4 without a journal each create walks past every inode its block group freed in the last minutes")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	fs.StringVar(&o.childLogLevel, "child-log-level", "warn", "log.level of the children (their logs go to files in the temporary directory)")
	fs.Func("child-env", "`KEY=VALUE` added to every infleet child's environment, e.g. INFLEET_ARCHIVE_BATCH_WINDOW=20ms for a setting the scenarios leave at its default (repeatable; the harness's own INFLEET_ variables never reach the children)", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", kv)
		}
		o.childEnv = append(o.childEnv, kv)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK
		}
		return o, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "load: unexpected argument %q (see -help)\n", fs.Arg(0))
		return o, exitUsage
	}
	q := func(full, quick int) int {
		if o.quick {
			return quick
		}
		return full
	}
	qd := func(full, quick time.Duration) time.Duration {
		if o.quick {
			return quick
		}
		return full
	}
	o.throughputJobs = cmp.Or(o.throughputJobs, q(20000, 2000))
	o.concurrencyJobs = cmp.Or(o.concurrencyJobs, q(10000, 1500))
	o.burndownJobs = cmp.Or(o.burndownJobs, q(20000, 2000))
	o.fleetJobs = cmp.Or(o.fleetJobs, q(5000, 500))
	o.batchingJobs = cmp.Or(o.batchingJobs, q(2000, 400))
	o.memoryJobs = cmp.Or(o.memoryJobs, q(100000, 5000))
	o.roundTime = cmp.Or(o.roundTime, qd(5*time.Second, time.Second))
	o.latencyTime = cmp.Or(o.latencyTime, qd(10*time.Second, 2*time.Second))

	var problems []string
	for _, s := range strings.Split(scen, ",") {
		s = strings.TrimSpace(s)
		names := []string{s}
		if s == "all" {
			names = scenarioNames
		} else if !slices.Contains(scenarioNames, s) {
			problems = append(problems, fmt.Sprintf("unknown scenario %q (want all or one of %s)", s, strings.Join(scenarioNames, ", ")))
			continue
		}
		for _, n := range names {
			if !slices.Contains(o.scenarios, n) {
				o.scenarios = append(o.scenarios, n)
			}
		}
	}
	for name, v := range map[string]int{"clients": o.clients, "concurrency": o.concurrency, "rounds": o.rounds,
		"throughput-jobs": o.throughputJobs, "concurrency-jobs": o.concurrencyJobs,
		"burndown-jobs": o.burndownJobs, "burndown-rounds": o.burndownRounds, "peer-rounds": o.peerRounds, "fleet-jobs": o.fleetJobs, "memory-jobs": o.memoryJobs, "batching-jobs": o.batchingJobs} {
		if v < 1 {
			problems = append(problems, fmt.Sprintf("-%s must be at least 1", name))
		}
	}
	if o.burndownRetention < 0 {
		problems = append(problems, "-burndown-retention must not be negative (0 skips the run with retention)")
	}
	if o.latencyRate < 0 {
		problems = append(problems, "-latency-rate must not be negative")
	}
	if o.roundTime <= 0 || o.latencyTime <= 0 || o.timeout <= 0 {
		problems = append(problems, "-round-time, -latency-time and -timeout must be positive")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		for _, p := range problems {
			fmt.Fprintln(stderr, "load: "+p)
		}
		return o, exitUsage
	}
	return o, -1
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " | ")
	return strings.ReplaceAll(s, "|", "\\|")
}
