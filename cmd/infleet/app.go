package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/infleet/infleet/adapters/file"
	natsadapter "github.com/infleet/infleet/adapters/nats"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batchinf"
	"github.com/infleet/infleet/pipeline/events"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/pipeline/models"
	"github.com/infleet/infleet/pipeline/telemetry"
	"github.com/infleet/infleet/pipeline/worker"
)

// app holds the concrete parts one process runs, built from the config. close releases them
// in the reverse order of their creation.
type app struct {
	// claimEagerUntil is worker.Config.ClaimEagerUntil (see claimEagerUntil in unclean.go).
	claimEagerUntil time.Time
	cfg             config.Config
	src             configSource
	aws             *awsClients
	log             zerolog.Logger
	reg             *prometheus.Registry // infleet's own metrics, all named infleet_
	// runtimeReg holds the Go runtime's and the process's collectors, gathered beside reg by
	// GET /metrics unless a scrape asks only for infleet_ metrics (metricsHandler).
	runtimeReg *prometheus.Registry
	metrics    *telemetry.Metrics
	// tracing exports spans over OTLP; nil when tracing is off (wire_telemetry.go).
	tracing *sdktrace.TracerProvider
	hub     *pipeline.Hub
	topics  pipeline.Topics
	// kafka is transport.kafka's cluster once checked.
	kafka kafkaClusters

	// queue is the embedded NATS server when transport.kind is embedded, else nil.
	queue      *natsadapter.Server
	publisher  message.Publisher
	subscriber message.Subscriber
	depth      pipeline.DepthReporter
	store      pipeline.JobStore
	results    pipeline.BlobStore
	notifier   pipeline.Notifier
	// events delivers the events the job store keeps in its outbox; nil when the store keeps
	// none (wire_notify.go).
	events *events.Dispatcher
	// inputs reads s3_uri inputs (the S3 result store); nil refuses them.
	inputs pipeline.InputFetcher
	// resultURLs signs result URLs (results.s3.presign); nil streams results.
	resultURLs pipeline.BlobURLSigner
	ready      []intake.NamedChecker
	// batches is batch_inference's collector and reconciler, made with the worker; nil when off.
	batches *batchinf.Batches

	closers []func() error

	// spend is the model fleet's router once workers start, for tenant budgets at intake.
	spend atomic.Pointer[models.Picker]

	// shared is the store the fleet's processes share for model limits and figures, opened
	// once (wire_modelstats.go sharedStore); sharedWhere names it for logs.
	sharedOnce  sync.Once
	shared      pipeline.LimitStore
	sharedWhere string
	sharedErr   error
	// stats is where every process's model figures meet; nil when the shared store keeps none.
	statsOnce sync.Once
	stats     pipeline.ModelStatsStore
	// process names this process in the fleet's model figures; fleet is its model fleet once
	// it publishes them.
	process string
	fleet   atomic.Pointer[models.Fleet]
}

// newApp builds the transport, stores and notifier the config names. Errors say which setting
// to fix.
func newApp(ctx context.Context, cfg config.Config, src configSource, log zerolog.Logger) (*app, error) {
	return newAppWith(ctx, cfg, src, newAWSClients(cfg), log)
}

// newAppWith is newApp making its AWS clients with aws, which the caller may share.
func newAppWith(ctx context.Context, cfg config.Config, src configSource, aws *awsClients, log zerolog.Logger) (_ *app, err error) {
	log = log.Hook(telemetry.TraceHook{})
	a := &app{cfg: cfg, src: src, aws: aws, log: log, reg: prometheus.NewRegistry(), runtimeReg: prometheus.NewRegistry(), hub: pipeline.NewHub(),
		process: models.ProcessName()}
	defer func() {
		if err != nil {
			_ = a.close()
		}
	}()
	// First opened, last closed: the spans of everything else are sent before it goes.
	if err := a.openTracing(ctx); err != nil {
		return nil, err
	}
	a.runtimeReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = telemetry.NewMetrics(a.reg)
	a.metrics.LimitTaskLabels(cfg.Metrics.MaxTaskLabels, cfg.NamedTasks())
	a.openEMF()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data_dir %s (set --data-dir or data_dir to a writable directory): %w", cfg.DataDir, err)
	}
	if err := a.openTransport(ctx); err != nil {
		return nil, err
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	if err := a.openResults(ctx); err != nil {
		return nil, err
	}
	if err := a.openNotifiers(ctx); err != nil {
		return nil, err
	}
	a.logDurability()
	return a, nil
}

// logDurability says once, at start-up, what the durability setting governs in this process:
// the embedded queue and the SQLite store follow it; the other transports and stores keep their
// own durability whatever it says.
func (a *app) logDurability() {
	var governs, unaffected []string
	if a.cfg.Transport.Kind == config.TransportEmbedded {
		governs = append(governs, "transport embedded")
	} else {
		unaffected = append(unaffected, "transport "+a.cfg.Transport.Kind)
	}
	if a.cfg.Store.Kind == config.StoreSQLite {
		governs = append(governs, "store sqlite")
	} else {
		unaffected = append(unaffected, "store "+a.cfg.Store.Kind)
	}
	ev := a.log.Info().Str("durability", a.cfg.Durability).Strs("governs", governs)
	if len(unaffected) > 0 {
		ev = ev.Strs("unaffected", unaffected)
	}
	switch {
	case len(governs) == 0:
		ev.Msg("durability: no part of this process follows it; the transport and the store keep their own durability")
	case a.cfg.Fsync():
		ev.Msg("durability: the parts it governs fsync every write before a 202 (survives a power loss)")
	default:
		ev.Msg("durability: the parts it governs hand writes to the operating system before a 202 (survives a crash of the process, not necessarily a power loss)")
	}
}

// sqliteSynchronous is the SQLite synchronous setting durability asks for.
func sqliteSynchronous(cfg config.Config) string {
	if cfg.Fsync() {
		return sqlite.SynchronousFull
	}
	return sqlite.SynchronousNormal
}

func (a *app) onClose(f func() error) { a.closers = append(a.closers, f) }

// close releases everything in reverse order and returns every error.
func (a *app) close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

func (a *app) openTransport(ctx context.Context) error {
	switch a.cfg.Transport.Kind {
	case config.TransportEmbedded:
		return a.openEmbedded(ctx)
	case config.TransportKafka:
		return a.openKafka(ctx)
	case config.TransportSQS:
		return a.openSQS(ctx)
	default:
		return fmt.Errorf("transport.kind %q is not available in this build (use embedded, sqs or kafka)", a.cfg.Transport.Kind)
	}
}

// openEmbedded starts the in-process NATS JetStream server with one stream per priority and
// one for dead letters.
func (a *app) openEmbedded(ctx context.Context) error {
	prefix := strings.ToLower(a.cfg.Transport.Embedded.StreamPrefix)
	a.topics = pipeline.Topics{High: prefix + ".high", Normal: prefix + ".normal", Low: prefix + ".low", Dead: prefix + ".dead"}
	unlock, err := lockDataDir(a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.onClose(unlock)
	log := a.log.With().Str("component", "nats").Logger()
	srv, err := natsadapter.StartServer(natsadapter.ServerConfig{
		StoreDir:   filepath.Join(a.cfg.DataDir, "nats"),
		SyncAlways: a.cfg.Fsync(), // durability: fsync
		Logger:     log,
	})
	if err != nil {
		return fmt.Errorf("start the embedded queue under %s: %w", a.cfg.DataDir, err)
	}
	a.onClose(func() error { srv.Shutdown(); return nil })
	a.queue = srv
	nc, err := a.connectEmbedded(srv)
	if err != nil {
		return err
	}
	if err := natsadapter.EnsureStreams(ctx, nc, a.topics.High, a.topics.Normal, a.topics.Low, a.topics.Dead); err != nil {
		return fmt.Errorf("create the embedded queue's streams: %w", err)
	}
	// This process holds the data-dir lock, so messages left unacked belong to one that died:
	// have them delivered now rather than after the ack wait.
	if err := natsadapter.ResetConsumers(ctx, nc, natsadapter.DefaultGroup, a.topics.High, a.topics.Normal, a.topics.Low); err != nil {
		return err
	}
	// Publishes go on a connection of their own, as they do in a fleet where the ingress is
	// another process: the server reads each connection in one goroutine, and the client
	// serialises it behind one lock and flusher, so on the consumers' connection an accept's
	// publish queued behind whatever acks and fetches the workers had sent before it.
	pubConn, err := a.connectEmbedded(srv)
	if err != nil {
		return err
	}
	// Gated on the server's Err: on a full disk a publish fails at once, saying so, rather than
	// waiting out its timeout and pushing JetStream into a failed write.
	pub, err := natsadapter.NewPublisher(natsadapter.PublisherConfig{Conn: pubConn, Gate: srv.Err, Logger: log})
	if err != nil {
		return err
	}
	a.onClose(pub.Close)
	sub, err := natsadapter.NewSubscriber(natsadapter.SubscriberConfig{
		Conn:        nc,
		MaxInFlight: a.cfg.Unacked(),
		Logger:      log,
	})
	if err != nil {
		return err
	}
	a.publisher, a.subscriber = pub, sub
	if d, ok := any(sub).(pipeline.DepthReporter); ok {
		a.depth = d
	}
	a.ready = append(a.ready, intake.NamedChecker{Name: "queue", Checker: checkFunc(func(ctx context.Context) error {
		if !nc.IsConnected() || !pubConn.IsConnected() {
			return errors.New("not connected to the embedded queue")
		}
		return srv.Check(ctx)
	})})
	return nil
}

// connectEmbedded opens a connection to the embedded queue, flushed and closed when a closes:
// acks, naks and publishes are fire-and-forget until flushed, and a message whose ack never
// left waits out the ack wait before redelivery.
func (a *app) connectEmbedded(srv *natsadapter.Server) (*natsgo.Conn, error) {
	nc, err := srv.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect to the embedded queue: %w", err)
	}
	a.onClose(func() error {
		err := nc.FlushTimeout(shutdownBound)
		nc.Close()
		return err
	})
	return nc, nil
}

func (a *app) openStore(ctx context.Context) error {
	switch a.cfg.Store.Kind {
	case config.StoreSQLite:
		path := a.cfg.Store.SQLite.Path
		if path == "" {
			path = filepath.Join(a.cfg.DataDir, "infleet.db")
		}
		s, err := sqlite.Open(ctx, sqlite.Config{Path: path, Synchronous: sqliteSynchronous(a.cfg), Logger: a.log})
		if err != nil {
			return fmt.Errorf("open the SQLite job store %s: %w", path, err)
		}
		a.onClose(s.Close)
		a.store = s
		a.ready = append(a.ready, intake.NamedChecker{Name: "store", Checker: s})
		return nil
	case config.StorePostgres:
		return a.openPostgres(ctx)
	case config.StoreDynamoDB:
		return a.openDynamoDB(ctx)
	default:
		return fmt.Errorf("store.kind %q is not available in this build (use sqlite, dynamodb or postgres)", a.cfg.Store.Kind)
	}
}

func (a *app) openResults(ctx context.Context) error {
	switch a.cfg.Results.Kind {
	case config.ResultsFile:
		// At durability fsync a result file and its directory entry are fsynced before the
		// result counts as stored (before the job is recorded COMPLETED), and so is every
		// archive write before its message is acknowledged.
		s, err := file.New(file.Config{Dir: filepath.Join(a.cfg.DataDir, "results"), Sync: a.cfg.Fsync(),
			Logger: a.log.With().Str("component", "results").Logger()})
		if err != nil {
			return fmt.Errorf("open the result directory under %s: %w", a.cfg.DataDir, err)
		}
		a.onClose(s.Close)
		a.results = s
		a.ready = append(a.ready, intake.NamedChecker{Name: "results", Checker: s})
		return nil
	case config.ResultsS3:
		return a.openS3(ctx)
	default:
		return fmt.Errorf("results.kind %q is not available in this build (use file or s3)", a.cfg.Results.Kind)
	}
}

// service builds the intake side.
func (a *app) service() (*intake.Service, error) {
	return intake.New(intake.Config{
		Store:      a.store,
		Results:    a.results,
		Publisher:  a.publisher,
		Topics:     a.topics,
		Hub:        a.hub,
		Notifier:   a.notifier,
		Outbox:     a.outboxWaker(),
		Ready:      a.ready,
		ResultURLs: a.resultURLs,
		Metrics:    a.metrics,
		Logger:     a.log.With().Str("component", "intake").Logger(),
	})
}

// worker builds the processing side.
func (a *app) worker() (*worker.Worker, error) {
	r, err := a.picker()
	if err != nil {
		return nil, err
	}
	guardIn, guardOut, err := a.guards(context.Background(), a.cfg, a.reg, a.log)
	if err != nil {
		return nil, err
	}
	if a.batches, err = a.batchInference(context.Background()); err != nil {
		return nil, err
	}
	wc := worker.Config{
		InputGuard:      guardIn,
		OutputGuard:     guardOut,
		Store:           a.store,
		Results:         a.results,
		Archive:         a.archive(),
		Inputs:          a.inputs,
		Decoder:         a.decoder(),
		Router:          r,
		DeadLetters:     a.publisher,
		Topics:          a.topics,
		Notifier:        a.notifier,
		Outbox:          a.outboxWaker(),
		Hub:             a.hub,
		StreamFrom:      a.streamFrom(),
		MaxAttempts:     a.cfg.Workers.MaxAttempts,
		Concurrency:     a.cfg.Workers.Concurrency,
		Backoff:         pipeline.Backoff{Initial: a.cfg.Workers.RetryBackoff.Initial, Max: a.cfg.Workers.RetryBackoff.Max},
		JobTimeout:      a.cfg.Workers.JobTimeout,
		ClaimAfter:      a.cfg.Workers.ClaimDelay(),
		ClaimEagerUntil: a.claimEagerUntil,
		Metrics:         a.metrics,
		Tracer:          a.tracer(),
		Logger:          a.log.With().Str("component", "worker").Logger(),
	}
	wc.BatchInference = workerBatchInference(a.batches)
	return worker.New(wc)
}

// scheduler merges the priority subscriptions for the router.
func (a *app) scheduler() (*worker.Scheduler, error) {
	w := a.cfg.Workers.PriorityWeights
	return worker.NewScheduler(worker.SchedulerConfig{
		Subscriber:   a.subscriber,
		Topics:       a.topics,
		Concurrency:  a.cfg.Workers.InFlight(),
		HeldAcks:     a.cfg.HeldAcks(),
		WeightHigh:   w.High,
		WeightNormal: w.Normal,
		WeightLow:    w.Low,
		Strict:       w.Strict || a.cfg.Workers.Strict,
	})
}

// checkFunc adapts a function to pipeline.Checker.
type checkFunc func(ctx context.Context) error

func (f checkFunc) Check(ctx context.Context) error { return f(ctx) }

// shutdownBound is how long the last steps of shutdown (HTTP, hand-back writes) may take.
const shutdownBound = 10 * time.Second
