package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverInsertBatch is how many jobs one InsertMany call inserts.
const riverInsertBatch = 5000

// riverOptions are the flags of `peers river`.
type riverOptions struct {
	common
	dsn               string
	fetchCooldown     time.Duration
	fetchPollInterval time.Duration
	maxConns          int
	keep              bool
}

func (o *riverOptions) register(fs *flag.FlagSet) {
	o.common.register(fs)
	fs.StringVar(&o.dsn, "dsn", os.Getenv("INFLEET_TEST_POSTGRES_DSN"),
		"PostgreSQL `URL` of a server where the run may create and drop a database (default $INFLEET_TEST_POSTGRES_DSN)")
	fs.DurationVar(&o.fetchCooldown, "fetch-cooldown", river.FetchCooldownDefault,
		"River's FetchCooldown: the least time between two fetches of available jobs (River's minimum is 1ms)")
	fs.DurationVar(&o.fetchPollInterval, "fetch-poll-interval", 0,
		"River's FetchPollInterval; 0 leaves River's default (1s), raised to -fetch-cooldown when that is longer")
	fs.IntVar(&o.maxConns, "max-conns", 16, "connections of the pgx pool River uses (16 is infleet's PostgreSQL store default)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's database instead of dropping it after the run")
}

func (o *riverOptions) check() []string {
	problems := o.common.check()
	if o.dsn == "" {
		problems = append(problems, "-dsn is required (or set INFLEET_TEST_POSTGRES_DSN, e.g. by running under .ci/peers/with-postgres.sh)")
	}
	if o.fetchCooldown < river.FetchCooldownMin {
		problems = append(problems, fmt.Sprintf("-fetch-cooldown must be at least %s (River's minimum)", river.FetchCooldownMin))
	}
	if o.fetchPollInterval < 0 {
		problems = append(problems, "-fetch-poll-interval must not be negative (0 leaves River's default)")
	}
	if o.maxConns < 2 {
		problems = append(problems, "-max-conns must be at least 2 (River holds one for LISTEN)")
	}
	return problems
}

// riverArgs is the job River runs.
type riverArgs struct {
	jobArgs
}

// Kind names the job kind in River's table.
func (riverArgs) Kind() string { return "summarize" }

// riverWorker sleeps the task's latency and records the result as the job's output.
type riverWorker struct {
	river.WorkerDefaults[riverArgs]
	task time.Duration
	out  output
}

// Work runs one job.
func (w *riverWorker) Work(ctx context.Context, _ *river.Job[riverArgs]) error {
	if err := sleepCtx(ctx, w.task); err != nil {
		return err
	}
	return river.RecordOutput(ctx, w.out)
}

func runRiver(ctx context.Context, o riverOptions, stderr io.Writer) (result, error) {
	res := result{Peer: "river", Version: moduleVersion("github.com/riverqueue/river"), Jobs: o.jobs, Workers: o.workers,
		TaskMS: o.task.Milliseconds(), ResultBytes: o.resultBytes, Settings: map[string]string{}}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	admin, err := pgx.Connect(ctx, o.dsn)
	if err != nil {
		return res, fmt.Errorf("connect to -dsn (is the server up? .ci/peers/with-postgres.sh starts one): %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes"} {
		var v string
		if err := admin.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			return res, fmt.Errorf("SHOW %s: %w", name, err)
		}
		res.Settings["postgres_"+name] = v
	}
	db := fmt.Sprintf("river_bench_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return res, fmt.Errorf("create the run's database %s (the -dsn user needs CREATEDB): %w", db, err)
	}
	if o.keep {
		progress(stderr, "river: keeping database %s", db)
	} else {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if _, err := admin.Exec(dctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
				progress(stderr, "river: could not drop database %s: %v", db, err)
			}
		}()
	}
	res.Settings["database"] = db

	pc, err := pgxpool.ParseConfig(o.dsn)
	if err != nil {
		return res, fmt.Errorf("parse -dsn: %w", err)
	}
	pc.ConnConfig.Database = db
	pc.MaxConns = int32(min(o.maxConns, 1<<20))
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return res, fmt.Errorf("open a pool on %s: %w", db, err)
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	// PostgreSQL's processes are its postmaster and what it forked: the parent of a backend,
	// and that parent's children, read again at each sample for the backends opened since.
	var backend int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return res, fmt.Errorf("ask PostgreSQL for its backend's pid: %w", err)
	}
	postmaster := parentOf(backend)
	meter := &cpuMeter{server: func() []int { return processTree(postmaster, "postgres") }}

	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: logger})
	if err != nil {
		return res, fmt.Errorf("river migrator: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return res, fmt.Errorf("run River's migrations on %s: %w", db, err)
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &riverWorker{task: o.task, out: output{Text: resultText(o.resultBytes)}})
	poll := o.fetchPollInterval
	if poll == 0 {
		poll = max(river.FetchPollIntervalDefault, o.fetchCooldown)
	}
	if poll < o.fetchCooldown {
		return res, fmt.Errorf("-fetch-poll-interval %s is shorter than -fetch-cooldown %s; River needs it at least as long", poll, o.fetchCooldown)
	}
	client, err := river.NewClient(driver, &river.Config{
		FetchCooldown:     o.fetchCooldown,
		FetchPollInterval: poll,
		Logger:            logger,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.workers}},
		Workers:           workers,
	})
	if err != nil {
		return res, fmt.Errorf("river client: %w", err)
	}
	res.Settings["fetch_cooldown"] = o.fetchCooldown.String()
	res.Settings["fetch_poll_interval"] = poll.String()
	res.Settings["pool_max_conns"] = strconv.Itoa(o.maxConns)

	// Enqueue everything before the workers start.
	args := riverArgs{newJobArgs()}
	batch := make([]river.InsertManyParams, 0, riverInsertBatch)
	enqStart := time.Now()
	for left := o.jobs; left > 0; left -= len(batch) {
		batch = batch[:0]
		for range min(left, riverInsertBatch) {
			batch = append(batch, river.InsertManyParams{Args: args})
		}
		if _, err := client.InsertMany(ctx, batch); err != nil {
			return res, fmt.Errorf("insert jobs (%d of %d inserted): %w", o.jobs-left, o.jobs, err)
		}
	}
	res.EnqueueSeconds = time.Since(enqStart).Seconds()
	progress(stderr, "river: %d jobs inserted in %.2fs into %s", o.jobs, res.EnqueueSeconds, db)

	// A job counts once the completer has written its completion: the subscription's event
	// comes after that, unlike the worker's return.
	events, cancelSub := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: o.jobs + 1000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer cancelSub()
	var completed, failed atomic.Int64
	var lastFailure atomic.Value
	go func() {
		for ev := range events {
			if ev.Kind == river.EventKindJobCompleted {
				completed.Add(1)
				continue
			}
			failed.Add(1)
			if n := len(ev.Job.Errors); n > 0 {
				lastFailure.Store(ev.Job.Errors[n-1].Error)
			}
		}
	}()

	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return res, fmt.Errorf("start River's client: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := client.Stop(sctx); err != nil {
			progress(stderr, "river: stop: %v", err)
		}
	}()
	fin, err := watch(ctx, start, o.jobs, func(context.Context) (int, error) {
		if f := failed.Load(); f > 0 {
			msg, _ := lastFailure.Load().(string)
			return 0, fmt.Errorf("%d jobs failed or were cancelled (last error: %q)", f, msg)
		}
		return int(completed.Load()), nil
	}, meter, stderr)
	if err != nil {
		return res, err
	}
	fin.fill(&res, o.jobs)

	// Check what the table says: every job completed, with its output in its metadata.
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&n); err != nil {
		return res, fmt.Errorf("count completed jobs: %w", err)
	}
	if n != o.jobs {
		return res, fmt.Errorf("river_job has %d completed jobs, want %d", n, o.jobs)
	}
	if err := pool.QueryRow(ctx, "SELECT octet_length((metadata->'output')::text) FROM river_job WHERE state = 'completed' LIMIT 1").
		Scan(&res.StoredResultBytes); err != nil {
		return res, fmt.Errorf("read a completed job's recorded output: %w", err)
	}
	if res.StoredResultBytes < o.resultBytes-2 {
		return res, errors.New("a completed job's recorded output is shorter than -result-bytes")
	}
	progress(stderr, "river: %d jobs in %.2fs from the start, %.0f jobs/s steady", o.jobs, res.Seconds, res.SteadyJobsPerSec)
	return res, nil
}
