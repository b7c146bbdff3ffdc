// Command peers runs the burn-down workload of infleet's load harness (bench/load, scenario
// burndown) on a peer job queue, so that the harness can print infleet's figure beside the
// peer's, measured on the same machine in the same run:
//
//	peers river -dsn postgres://... [flags]   River + PostgreSQL
//	peers asynq -redis 127.0.0.1:6379 [flags] asynq + Redis
//
// Each subcommand enqueues -jobs jobs first, then starts -workers workers that each sleep -task
// and store a -result-bytes result the way the peer stores results, and measures how fast the
// backlog burns down. It prints one JSON line on stdout (the figures, the peer's version and the
// server's durability settings); progress and the peers' own logs go to stderr. It lives in its
// own Go module so that the peers' dependencies stay out of infleet's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

const usageText = `Usage: peers river|asynq [flags]

Runs infleet's burn-down workload on a peer queue and prints one JSON line of results:
  river   River + PostgreSQL: a fresh database is created for the run (and dropped after it),
          River's migrations run there, the jobs are inserted with InsertMany, each job
          records its result with river.RecordOutput.
  asynq   asynq + Redis: the queue is flushed, the jobs are enqueued by parallel clients,
          each task writes its result with its ResultWriter (kept by a Retention).

The time is measured from the workers' start; the steady rate counts from the first
completion seen to the last, both polled every 50 ms (5 ms for the last 5%), as the harness
polls infleet. Run 'peers river -help' or 'peers asynq -help' for the flags.
`

// common are the flags every subcommand has.
type common struct {
	jobs        int
	workers     int
	task        time.Duration
	resultBytes int
	timeout     time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.IntVar(&c.jobs, "jobs", 20000, "jobs enqueued before the workers start")
	fs.IntVar(&c.workers, "workers", 256, "workers running jobs at once")
	fs.DurationVar(&c.task, "task", 0, "how long each job's work sleeps (the model's latency, e.g. 100ms)")
	fs.IntVar(&c.resultBytes, "result-bytes", 200, "bytes of the JSON result each job stores")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole run")
}

func (c *common) check() []string {
	var problems []string
	if c.jobs < 1 || c.workers < 1 {
		problems = append(problems, "-jobs and -workers must be at least 1")
	}
	if c.task < 0 {
		problems = append(problems, "-task must not be negative")
	}
	if c.resultBytes < len(`{"text":""}`) {
		problems = append(problems, fmt.Sprintf("-result-bytes must be at least %d (the JSON around the text)", len(`{"text":""}`)))
	}
	if c.timeout <= 0 {
		problems = append(problems, "-timeout must be positive")
	}
	return problems
}

// result is the JSON line a run prints.
type result struct {
	Peer        string `json:"peer"`
	Version     string `json:"version"`
	Jobs        int    `json:"jobs"`
	Workers     int    `json:"workers"`
	TaskMS      int64  `json:"task_ms"`
	ResultBytes int    `json:"result_bytes"`
	// Seconds runs from the workers' start to the first poll that saw every job completed.
	Seconds    float64 `json:"seconds"`
	JobsPerSec float64 `json:"jobs_per_sec"`
	// SteadyJobsPerSec counts from the first poll that saw a completion to the last: start-up
	// and the first task's latency left out, as the harness's figure for infleet.
	SteadyJobsPerSec float64 `json:"steady_jobs_per_sec"`
	FirstSeconds     float64 `json:"first_completion_seconds"`
	FirstCount       int     `json:"first_count"`
	EnqueueSeconds   float64 `json:"enqueue_seconds"`
	// CPUSeconds is the CPU time this process (the peer's workers and its client) used from
	// the first poll that saw a completion to the last; ServerCPUSeconds is what the server's
	// processes (PostgreSQL's postmaster and its children, or Redis) used meanwhile, -1 when
	// they could not be read (a server on another machine).
	CPUSeconds       float64 `json:"cpu_seconds"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	// StoredResultBytes is the size of one stored result, read back after the run.
	StoredResultBytes int `json:"stored_result_bytes"`
	// Settings are the peer's configuration and its server's durability, as text.
	Settings map[string]string `json:"settings"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usageText)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var res result
	var err error
	switch args[0] {
	case "river":
		var o riverOptions
		fs := newFlagSet("river", stderr)
		o.register(fs)
		if rc := parse(fs, args[1:], stderr, o.check); rc >= 0 {
			return rc
		}
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		res, err = runRiver(ctx, o, stderr)
	case "asynq":
		var o asynqOptions
		fs := newFlagSet("asynq", stderr)
		o.register(fs)
		if rc := parse(fs, args[1:], stderr, o.check); rc >= 0 {
			return rc
		}
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		res, err = runAsynq(ctx, o, stderr)
	default:
		fmt.Fprintf(stderr, "peers: unknown peer %q (want river or asynq)\n", args[0])
		return exitUsage
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (the -timeout passed)", err)
		}
		fmt.Fprintf(stderr, "peers %s: %v\n", args[0], err)
		return exitFailed
	}
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(stderr, "peers %s: encode the result: %v\n", args[0], err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s\n", line)
	return exitOK
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("peers "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args into fs and checks them; it returns -1 to go on, else the exit status.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer, check func() []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	problems := check()
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), p)
	}
	if len(problems) > 0 {
		return exitUsage
	}
	return -1
}

// progress prints one line on stderr.
func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "peers: "+format+"\n", args...)
}

// jobArgs is the job each peer runs: the body infleet's harness POSTs (a summarize task of 12
// words), so that the peers store and move the same payload.
type jobArgs struct {
	Task  string            `json:"task"`
	Input map[string]string `json:"input"`
}

func newJobArgs() jobArgs {
	words := make([]string, 12)
	for i := range words {
		words[i] = fmt.Sprintf("benchmarkword%c", 'a'+i)
	}
	return jobArgs{Task: "summarize", Input: map[string]string{"text": strings.Join(words, " ")}}
}

// output is the result a job stores; resultText sizes it.
type output struct {
	Text string `json:"text"`
}

// resultText returns the text that makes output marshal to exactly n bytes.
func resultText(n int) string {
	return strings.Repeat("r", n-len(`{"text":""}`))
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish is what watch saw of a burn-down.
type finish struct {
	start      time.Time // the workers' start
	first      time.Time // first poll that saw a completion
	firstCount int
	last       time.Time // first poll that saw every job completed
	// cpuFirst and cpuLast are the CPU used so far at first and at last.
	cpuFirst, cpuLast cpuSample
}

func (f finish) fill(r *result, n int) {
	r.Seconds = f.last.Sub(f.start).Seconds()
	r.JobsPerSec = float64(n) / r.Seconds
	r.FirstSeconds = f.first.Sub(f.start).Seconds()
	r.FirstCount = f.firstCount
	if d := f.last.Sub(f.first).Seconds(); d > 0 {
		r.SteadyJobsPerSec = float64(n-f.firstCount) / d
	}
	r.CPUSeconds = (f.cpuLast.self - f.cpuFirst.self).Seconds()
	r.ServerCPUSeconds = -1
	if used := serverSince(f.cpuFirst, f.cpuLast); used >= 0 {
		r.ServerCPUSeconds = used.Seconds()
	}
}

// watch polls count every 50 ms (every 5 ms once 95% of n are done, to place the end precisely)
// until it reaches n, and prints the progress every 2 s. start is when the workers started.
// meter (nil: this process only) is read at the first poll that sees a completion and at the
// last, after each poll's time is taken.
func watch(ctx context.Context, start time.Time, n int, count func(context.Context) (int, error), meter *cpuMeter, stderr io.Writer) (finish, error) {
	f := finish{start: start}
	var done atomic.Int64
	stopProgress := every(2*time.Second, func() { progress(stderr, "completed %d/%d", done.Load(), n) })
	defer stopProgress()
	for {
		c, err := count(ctx)
		if err != nil {
			return f, fmt.Errorf("count the completed jobs (%d of %d so far): %w", done.Load(), n, err)
		}
		now := time.Now()
		done.Store(int64(c))
		if f.first.IsZero() && c > 0 {
			f.first, f.firstCount = now, c
			f.cpuFirst = meter.sample()
		}
		if c >= n {
			f.last = now
			f.cpuLast = meter.sample()
			if f.firstCount >= n {
				return f, errors.New("every job completed before the first poll after the start; raise -jobs")
			}
			return f, nil
		}
		wait := 50 * time.Millisecond
		if c*20 >= n*19 {
			wait = 5 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return f, fmt.Errorf("only %d of %d jobs completed: %w", c, n, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// every calls fn every interval until the returned stop is called.
func every(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// moduleVersion returns "path version" of a dependency compiled into this binary.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return path + " " + d.Version
			}
		}
	}
	return path + " (version unknown)"
}
