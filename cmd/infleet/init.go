package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	kafkaadapter "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/config"
)

// migrator is a job store whose schema is created by `infleet init`.
type migrator interface {
	Migrate(ctx context.Context) (int, error)
}

func runInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("init", "[flags]",
		"Creates, idempotently, every configured resource that is missing: the embedded queue's\n"+
			"streams, Kafka topics, SQS queues with their redrive policy, the job store's tables (SQLite,\n"+
			"PostgreSQL migrations, the DynamoDB table), the S3 bucket or result directory, the SNS topic.\n"+
			"Run it again at will; it changes nothing that exists.", stderr)
	pf := addProcessFlags(fs)
	if rc := parseFlags(fs, args); rc >= 0 {
		return rc
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "init", "unexpected argument %q", fs.Arg(0))
	}
	cfg, src, err := pf.load(fs)
	if err != nil {
		return configError(stderr, "init", err)
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Cloud resources first: opening the app checks that they exist.
	ctx = log.WithContext(ctx)
	clients := newAWSClients(cfg)
	for _, step := range cloudInitSteps(cfg) {
		line, err := step(ctx, clients)
		if err != nil {
			fmt.Fprintln(stderr, "infleet init:", err)
			return 1
		}
		fmt.Fprintln(stdout, line)
	}
	a, err := newAppWith(ctx, cfg, src, clients, log)
	if err != nil {
		fmt.Fprintln(stderr, "infleet init:", err)
		return 1
	}
	defer a.close()
	if cfg.Transport.Kind == config.TransportKafka {
		if err := a.initKafka(ctx); err != nil {
			fmt.Fprintln(stderr, "infleet init: create the Kafka topics:", err)
			return 1
		}
		t := a.topics
		fmt.Fprintf(stdout, "transport kafka: retry topics %s, %s, %s and removals topic %s ready\n",
			kafkaadapter.RetryTopic(t.High), kafkaadapter.RetryTopic(t.Normal), kafkaadapter.RetryTopic(t.Low), kafkaadapter.RemovedTopic(t.Dead))
		if topic := cfg.Notify.Kafka.Topic; topic != "" {
			fmt.Fprintf(stdout, "notify kafka: topic %s ready\n", topic)
		}
	}
	fmt.Fprintf(stdout, "transport %s: %s, %s, %s, %s ready\n", cfg.Transport.Kind,
		a.topics.High, a.topics.Normal, a.topics.Low, a.topics.Dead)
	if m, ok := a.store.(migrator); ok {
		v, err := m.Migrate(ctx)
		if err != nil {
			fmt.Fprintln(stderr, "infleet init: migrate the job store:", err)
			return 1
		}
		fmt.Fprintf(stdout, "store %s: schema at version %d\n", cfg.Store.Kind, v)
	} else {
		fmt.Fprintf(stdout, "store %s: ready\n", cfg.Store.Kind)
	}
	fmt.Fprintf(stdout, "results %s: ready\n", cfg.Results.Kind)
	return 0
}

// initStep creates one cloud resource of the config, idempotently, and says what is ready.
type initStep func(ctx context.Context, clients *awsClients) (string, error)

// cloudInitSteps are the steps the config needs before the app can open.
func cloudInitSteps(c config.Config) []initStep {
	var steps []initStep
	if c.Transport.Kind == config.TransportSQS {
		steps = append(steps, initSQS)
	}
	if c.Store.Kind == config.StoreDynamoDB {
		steps = append(steps, initDynamoDB)
	}
	if c.Results.Kind == config.ResultsS3 {
		steps = append(steps, initS3)
	}
	if c.Notify.SNS.TopicARN != "" {
		steps = append(steps, initSNS)
	}
	return steps
}
