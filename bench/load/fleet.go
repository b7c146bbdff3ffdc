package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// fleetKind is one way to run infleet as a fleet: the config of its shared transport, store and
// result store, and how `infleet init` prepares them.
type fleetKind struct {
	name  string
	setup string // what the figure was measured on
	// yaml returns the transport/store/results part of the config, with names unique to run.
	yaml func(run string) string
	// skip says why this fleet cannot run here ("" when it can).
	skip  string
	close func()
}

// fleetKinds are the fleets the `fleet` scenario measures: SQS + DynamoDB + S3 on the
// emulators `.ci/peers/with-aws.sh` starts, and Kafka (kfake, in this process) + PostgreSQL.
func (h *harness) fleetKinds() []fleetKind {
	awsEP, dynEP := os.Getenv("INFLEET_TEST_AWS_ENDPOINT"), os.Getenv("INFLEET_TEST_DYNAMODB_ENDPOINT")
	sqs := fleetKind{
		name:  "sqs",
		setup: "SQS + S3 on fauxqs 1.9.2 and DynamoDB on dynalite 4.0.0 (emulators, one Node process each, on this machine)",
		yaml: func(run string) string {
			return fmt.Sprintf(`transport:
  kind: sqs
  sqs: {queues: {high: %[1]s-high, normal: %[1]s-normal, low: %[1]s-low}, dead_letter_queue: %[1]s-dead, endpoint: %[2]q}
store: {kind: dynamodb, dynamodb: {table: %[1]s-jobs, endpoint: %[3]q}}
results: {kind: s3, s3: {bucket: %[1]s-results, endpoint: %[2]q}}
`, run, awsEP, dynEP)
		},
	}
	if awsEP == "" || dynEP == "" {
		sqs.skip = "INFLEET_TEST_AWS_ENDPOINT/INFLEET_TEST_DYNAMODB_ENDPOINT unset (run under .ci/peers/with-aws.sh; make bench does)"
	}
	kafka := fleetKind{
		name:  "kafka",
		setup: "Kafka on kfake (in the harness's process, 1 broker) + PostgreSQL store",
	}
	dsn := os.Getenv("INFLEET_TEST_POSTGRES_DSN")
	if dsn == "" {
		kafka.skip = "INFLEET_TEST_POSTGRES_DSN unset (run under .ci/peers/with-postgres.sh; make bench does)"
	} else if cluster, err := kfake.NewCluster(kfake.NumBrokers(1)); err != nil {
		kafka.skip = "kfake: " + err.Error()
	} else {
		kafka.close = cluster.Close
		addr := cluster.ListenAddrs()[0]
		kafka.yaml = func(run string) string {
			return fmt.Sprintf(`transport:
  kind: kafka
  kafka: {brokers: [%[2]q], topics: {high: %[1]s.high, normal: %[1]s.normal, low: %[1]s.low}, dead_letter_topic: %[1]s.dead, group: %[1]s}
store: {kind: postgres, postgres: {dsn: %[3]q}}
`, run, addr, dsn)
		}
	}
	return []fleetKind{sqs, kafka}
}

// fleet: jobs enqueued first through `infleet ingress`, then burnt down by 1 and by 2 `infleet
// worker` processes sharing the fleet's transport and store.
func (h *harness) fleet(ctx context.Context) ([]row, error) {
	n, w := h.opts.fleetJobs, 64
	var rows []row
	for _, k := range h.fleetKinds() {
		if k.close != nil {
			defer k.close()
		}
		if k.skip != "" {
			rows = append(rows, row{Scenario: "fleet", Measure: k.name + ": not run", Result: "skipped", Setup: k.skip})
			continue
		}
		var rates [2]float64
		for i, workers := range []int{1, 2} {
			rate, err := h.fleetRun(ctx, k, n, w, workers)
			if err != nil {
				return rows, fmt.Errorf("%s with %d workers: %w", k.name, workers, err)
			}
			rates[i] = rate
			h.progress("fleet %s, %d worker(s): %.0f jobs/s", k.name, workers, rate)
			h.settle()
		}
		setup := fmt.Sprintf("%s jobs enqueued first by `infleet ingress` (then stopped), burnt down by N `infleet worker` processes on this machine, %d workers each, 0 ms sim model; %s",
			thousands(float64(n)), w, k.setup)
		rows = append(rows,
			row{Scenario: "fleet", Measure: k.name + ": jobs/s, 1 worker process", Result: thousands(rates[0]) + " jobs/s", Setup: setup},
			row{Scenario: "fleet", Measure: k.name + ": jobs/s, 2 worker processes", Result: fmt.Sprintf("%s jobs/s (%.2fx of 1)", thousands(rates[1]), rates[1]/rates[0]), Setup: setup},
		)
	}
	return rows, nil
}

// fleetRun measures one burn-down: fresh resources, n jobs enqueued, `workers` processes.
func (h *harness) fleetRun(ctx context.Context, k fleetKind, n, concurrency, workers int) (float64, error) {
	run := fmt.Sprintf("bench-%s-%d", k.name, time.Now().UnixNano()%1e9)
	dir := h.dir("fleet-" + run)
	cfg := h.cfg(0, concurrency)
	cfg.extra = k.yaml(run)
	cfgPath := filepath.Join(dir, "init.yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	// Runs after the children are stopped (deferred below): their result files go too, into
	// the trash, so that deleting them does not slow the runs after this one (cleanScenario).
	defer h.discard(filepath.Dir(dir))
	if err := os.WriteFile(cfgPath, []byte(cfg.yaml()), 0o644); err != nil {
		return 0, err
	}
	init := exec.CommandContext(ctx, h.bin, "init", "--config", cfgPath, "--data-dir", filepath.Join(dir, "init"))
	init.Env = childEnv(os.Environ())
	if out, err := init.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("infleet init: %v: %s", err, strings.TrimSpace(string(out)))
	}
	ing, err := h.startChild(ctx, run, "ingress", filepath.Join(dir, "ingress"), cfg)
	if err != nil {
		return 0, err
	}
	if _, err := h.submitN(ctx, ing.base, n, h.opts.clients); err != nil {
		h.stopChild(ing)
		return 0, err
	}
	if err := ing.stop(); err != nil {
		return 0, err
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			h.stopChild(p)
		}
	}()
	for i := range workers {
		p, err := h.startChild(ctx, fmt.Sprintf("%s-w%d", run, i), "worker", filepath.Join(dir, fmt.Sprintf("worker-%d", i)), cfg)
		if err != nil {
			return 0, err
		}
		procs = append(procs, p)
	}
	return h.waitFleet(ctx, procs, n, jobTimeout(n)*4)
}

// waitFleet polls every worker's /metrics until `total` jobs finished among them, and returns
// the completion rate from the first completion seen to the last.
func (h *harness) waitFleet(ctx context.Context, procs []*proc, total int, timeout time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var first time.Time
	var firstCount, done float64
	stop := h.every(2*time.Second, func() { h.progress("  finished %.0f/%d", done, total) })
	defer stop()
	for {
		var sum counts
		for _, p := range procs {
			if err := p.alive(); err != nil {
				return 0, err
			}
			c, err := h.scrape(ctx, p.base)
			if err != nil {
				if ctx.Err() != nil {
					return 0, fmt.Errorf("only %.0f of %d jobs finished within %s", done, total, timeout)
				}
				return 0, err
			}
			sum.completed += c.completed
			sum.failed += c.failed
			sum.cancelled += c.cancelled
		}
		now := time.Now()
		done = sum.finished()
		if sum.failed+sum.cancelled > 0 {
			return 0, fmt.Errorf("%.0f jobs FAILED and %.0f CANCELLED; the first worker's log ends:\n%s", sum.failed, sum.cancelled, procs[0].logTail())
		}
		if first.IsZero() && done > 0 {
			first, firstCount = now, done
		}
		if done >= float64(total) {
			if !now.After(first) || done <= firstCount {
				return 0, fmt.Errorf("every job finished before the first poll; raise -fleet-jobs")
			}
			return (done - firstCount) / now.Sub(first).Seconds(), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("only %.0f of %d jobs finished within %s", done, total, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
