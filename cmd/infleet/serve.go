package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/internal/heapfloor"
	"github.com/infleet/infleet/pipeline/telemetry"
	"github.com/infleet/infleet/pipeline/worker"
)

// runServe is `infleet serve`: the HTTP ingress and the workers in one process.
func runServe(args []string, stdout, stderr io.Writer) int {
	return runProcess("serve", roles{ingress: true, workers: true}, args, stderr,
		"Runs the HTTP ingress and the workers in one process. With no config it runs the embedded\n"+
			"default: an in-process NATS JetStream queue, a SQLite job store and result files under\n"+
			"--data-dir, and the simulated model.")
}

// runIngress is `infleet ingress`: the HTTP API without workers.
func runIngress(args []string, stdout, stderr io.Writer) int {
	return runProcess("ingress", roles{ingress: true}, args, stderr,
		"Runs the HTTP API without workers: jobs are accepted and queued for `infleet worker`\n"+
			"processes. On the embedded transport one process owns --data-dir at a time.")
}

// runWorker is `infleet worker`: workers only, with /healthz, /readyz and /metrics.
func runWorker(args []string, stdout, stderr io.Writer) int {
	return runProcess("worker", roles{workers: true}, args, stderr,
		"Runs workers that consume the queues, without the jobs API; /healthz, /readyz and\n"+
			"/metrics are served on --addr. On the embedded transport one process owns --data-dir\n"+
			"at a time.")
}

// roles says which halves of infleet a process runs.
type roles struct{ ingress, workers bool }

// processFlags are the flags every long-running command shares.
type processFlags struct {
	config  *string
	addr    *string
	dataDir *string
}

func addProcessFlags(fs *flag.FlagSet) processFlags {
	return processFlags{
		config:  fs.String("config", os.Getenv("INFLEET_CONFIG"), "YAML config file (env INFLEET_CONFIG); none runs the embedded default"),
		addr:    fs.String("addr", "", "listen address (default :8080, or addr in the config)"),
		dataDir: fs.String("data-dir", "", "directory for the embedded queue, SQLite store and result files (default ./data)"),
	}
}

// load reads the config; the flags given on the command line win over the file and the
// environment, so they are applied as environment overrides before the defaults that derive
// from them (the SQLite path from data_dir).
func (p processFlags) load(fs *flag.FlagSet) (config.Config, configSource, error) {
	environ := os.Environ()
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "addr":
			environ = append(environ, "INFLEET_ADDR="+*p.addr)
		case "data-dir":
			environ = append(environ, "INFLEET_DATA_DIR="+*p.dataDir)
		}
	})
	src := configSource{path: *p.config, environ: environ}
	cfg, err := config.Load(*p.config, environ)
	return cfg, src, err
}

// configError prints a config problem list and returns exitUsage.
func configError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "infleet %s: the configuration has problems; fix them and start again:\n%v\n", cmd, err)
	return exitUsage
}

// newLogger returns the process logger: JSON lines, or pretty when stderr is a terminal
// (log.format overrides), at log.level.
func newLogger(cfg config.Config, stderr io.Writer) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	var w io.Writer = stderr
	format := cfg.Log.Format
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "pretty"
		}
	}
	if format == "pretty" {
		w = zerolog.ConsoleWriter{Out: stderr, TimeFormat: "15:04:05.000"}
	}
	level, err := zerolog.ParseLevel(strings.ToLower(cfg.Log.Level))
	if err != nil || cfg.Log.Level == "" {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

func runProcess(name string, r roles, args []string, stderr io.Writer, about string) int {
	fs := newFlagSet(name, "[flags]", about, stderr)
	pf := addProcessFlags(fs)
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if fs.NArg() > 0 {
		return usageError(stderr, name, "unexpected argument %q", fs.Arg(0))
	}
	cfg, src, err := pf.load(fs)
	if err != nil {
		return configError(stderr, name, err)
	}
	log := newLogger(cfg, stderr)
	if r.ingress {
		if !cfg.Auth.Enabled() {
			log.Warn().Str("addr", cfg.Addr).Msg("auth is not configured: the API is open to anyone who can reach it")
		}
	}
	defer heapfloor.Start(cfg.Runtime.HeapFloor())()
	if stopProfile, err := startCPUProfile(os.Getenv("INFLEET_CPUPROFILE")); err != nil {
		log.Warn().Err(err).Msg("cpu profile not started")
	} else {
		defer stopProfile()
	}
	if stopTrace, err := startTrace(os.Getenv("INFLEET_TRACE")); err != nil {
		log.Warn().Err(err).Msg("execution trace not started")
	} else {
		defer stopTrace()
	}
	defer func() {
		if err := writeAllocProfile(os.Getenv("INFLEET_MEMPROFILE")); err != nil {
			log.Warn().Err(err).Msg("allocation profile not written")
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, src, log, r); err != nil {
		log.Error().Err(err).Msg(name + " stopped")
		return 1
	}
	return 0
}

// serve runs the roles r until ctx ends, then shuts down in two stages: stop taking requests
// and messages and let running jobs finish within workers.shutdown_timeout, then cancel what
// still runs and hand it back to the queue without spending an attempt.
func serve(ctx context.Context, cfg config.Config, src configSource, log zerolog.Logger, r roles) error {
	a, err := newApp(ctx, cfg, src, log)
	if err != nil {
		return err
	}
	log = a.log // with trace ids
	defer func() {
		if err := a.close(); err != nil {
			log.Warn().Err(err).Msg("close")
		}
	}()
	svc, err := a.service()
	if err != nil {
		return err
	}
	metrics, err := metricsHandler(cfg.Metrics, a.reg, a.runtimeReg, src.getenv,
		log.With().Str("component", "http").Logger())
	if err != nil {
		return err
	}
	handler := handlers.NewOpsAPI(svc.Ready, metrics, log.With().Str("component", "http").Logger())
	sec, err := wireAuth(ctx, cfg, a.aws, log, r.ingress) // wire_auth.go: auth, limits, callback checks, CORS, TLS
	if err != nil {
		return err
	}
	defer func() { _ = sec.close() }()
	// Ends the operator's takeover of interrupted replays before the stores close.
	opsCtx, stopOps := context.WithCancel(context.Background())
	defer stopOps()
	if r.ingress {
		if sec.guard.Budget, err = a.tenantBudgets(); err != nil {
			return err
		}
		usage, err := a.usageStore()
		if err != nil {
			return err
		}
		mask, err := inputMask(cfg, log)
		if err != nil {
			return err
		}
		deltas, err := a.deltaFeed(r)
		if err != nil {
			return err
		}
		handler, err = handlers.NewAPI(handlers.APIConfig{
			Middleware:           sec.middleware,
			Jobs:                 sec.jobs(svc),
			MaxBodyBytes:         cfg.HTTP.MaxBodyBytes,
			MaxWait:              cfg.HTTP.MaxWait,
			WriteTimeout:         cfg.HTTP.WriteTimeout,
			MaxInflightBodyBytes: cfg.HTTP.MaxInflightBodyBytes,
			Metrics:              metrics,
			Logger:               log.With().Str("component", "http").Logger(),
			Observe:              observeHTTP(a.metrics),
			Operations:           a.operations(opsCtx),
			ModelReports:         a.modelReports,
			MaskInput:            mask,
			Deltas:               deltas,
			Usage:                usage,
		})
		if err != nil {
			return err
		}
		if handler, err = withConsole(handler, sec.handler(handler), cfg, log); err != nil {
			return err
		}
	}
	if r.workers {
		// Other processes relay the answers of the streaming jobs running here from this route.
		handler = handlers.WithStreamRelay(handler, a.hub, cfg.Streaming.RelayKey)
	}
	handler = a.traceHTTP(handler)

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	var w *workers
	stopReaper, stopEvents := func() {}, func() {}
	if r.workers {
		if w, err = startWorkers(runCtx, a); err != nil {
			return err
		}
		if stopReaper, err = a.startReaper(runCtx); err != nil {
			w.stop(log, 0)
			return err
		}
		stopEvents = a.startEvents(runCtx)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		stopReaper()
		if w != nil {
			w.stop(log, 0)
		}
		stopEvents()
		return fmt.Errorf("listen on %s (set --addr or addr to a free address): %w", cfg.Addr, err)
	}
	srv := newHTTPServer(cfg.HTTP, handler, log.With().Str("component", "http_server").Logger())
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(sec.listener(ln)) }()
	go a.metrics.WatchQueueDepth(runCtx, a.depth, a.topics, 5*time.Second)
	log.Info().Str("addr", ln.Addr().String()).Bool("ingress", r.ingress).Bool("workers", r.workers).
		Str("transport", cfg.Transport.Kind).Str("store", cfg.Store.Kind).Str("results", cfg.Results.Kind).
		Int("concurrency", cfg.Workers.Concurrency).Msg("infleet is serving")

	var routerDone <-chan error
	if w != nil {
		routerDone = w.done
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpDone:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-routerDone:
		runErr = fmt.Errorf("workers stopped: %w", err)
	}
	log.Info().Dur("shutdown_timeout", cfg.Workers.ShutdownTimeout).Msg("shutting down: no new requests or jobs; running jobs may finish")
	httpCtx, cancelHTTP := context.WithTimeout(context.Background(), shutdownBound)
	defer cancelHTTP()
	if err := srv.Shutdown(httpCtx); err != nil {
		_ = srv.Close()
	}
	stopReaper()
	if w != nil {
		w.stop(log, cfg.Workers.ShutdownTimeout)
	}
	stopEvents()
	log.Info().Msg("stopped")
	return runErr
}

// workers is a running Watermill router feeding the pipeline worker from the scheduler.
type workers struct {
	worker *worker.Worker
	sched  *worker.Scheduler
	router *message.Router
	done   chan error
	// stoppedCleanly records a clean stop once the jobs are drained (see claimEagerUntil).
	stoppedCleanly func()
}

func startWorkers(ctx context.Context, a *app) (*workers, error) {
	eagerUntil, stoppedCleanly := claimEagerUntil(a.cfg, a.log)
	a.claimEagerUntil = eagerUntil
	jobWorker, err := a.worker()
	if err != nil {
		stoppedCleanly()
		return nil, err
	}
	sched, err := a.scheduler()
	if err != nil {
		return nil, err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: shutdownBound},
		handlers.WatermillLogger(a.log.With().Str("component", "router").Logger()))
	if err != nil {
		return nil, err
	}
	router.AddMiddleware(handlers.Recoverer)
	router.AddConsumerHandler("jobs", worker.SchedulerTopic, sched, handlers.JobHandler(jobWorker))
	w := &workers{worker: jobWorker, sched: sched, router: router, done: make(chan error, 1), stoppedCleanly: stoppedCleanly}
	go func() { w.done <- router.Run(ctx) }()
	// A cancel recorded by any process stops the job here; ctx ends with the process.
	go jobWorker.WatchCancels(ctx, a.cfg.Workers.CancelPoll)
	if a.batches != nil {
		// Follows this process's batches and those a stopped process left behind.
		go a.batches.Run(ctx, jobWorker)
	}
	select {
	case <-router.Running():
		return w, nil
	case err := <-w.done:
		return nil, fmt.Errorf("start workers: %w", err)
	}
}

// stop drains the workers: no new messages, running jobs get drain to finish, then they are
// cancelled and handed back to the queue. The acks that wait for archive writes get what is
// left of drain; one still waiting then is answered late or not at all, and its message is
// delivered again (that delivery only archives its job again).
func (w *workers) stop(log zerolog.Logger, drain time.Duration) {
	w.sched.Drain()
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), drain)
	defer cancelDrain()
	drained := w.worker.Wait(drainCtx)
	if !drained {
		w.worker.CancelInFlight()
		waitCtx, cancelWait := context.WithTimeout(context.Background(), shutdownBound)
		defer cancelWait()
		w.worker.Wait(waitCtx)
	}
	if drained && !w.sched.WaitAnswered(drainCtx) {
		log.Warn().Dur("shutdown_timeout", drain).
			Msg("some acknowledgements still waited for the archive at shutdown; their messages will be delivered again")
	}
	if err := w.router.Close(); err != nil {
		log.Warn().Err(err).Msg("router close")
	}
	// One line for every job handed back, however many there were.
	if n := w.worker.HandedBack(); n > 0 || !drained {
		log.Info().Int64("jobs_handed_back", n).Dur("shutdown_timeout", drain).
			Msg("jobs still running at shutdown were handed back to the queue without spending an attempt")
	}
	w.stoppedCleanly()
}

// observeHTTP records request metrics.
func observeHTTP(m *telemetry.Metrics) func(route string, status int, d time.Duration) {
	return func(route string, status int, d time.Duration) {
		m.HTTPRequests.WithLabelValues(route, fmt.Sprint(status)).Inc()
		m.HTTPDurations.WithLabelValues(route).Observe(d.Seconds())
	}
}
