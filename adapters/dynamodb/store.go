// Package dynamodb is a pipeline.JobStore and pipeline.LimitStore on one Amazon DynamoDB
// table: the job store of an AWS fleet, shared by every ingress and worker process.
//
// One table holds every item, keyed by pk alone: a job ("job#<id>"), an idempotency key
// ("idem#<len(tenant)>:<tenant>#<key>", naming the job that holds it), a rate bucket
// ("rate#<key>"), a quota counter ("quota#<key>") and the figures' counters ("stats#..."). Every
// job write is a single-item conditional write, so the store needs no transactions (dynalite,
// the test emulator, has none):
//
//   - Create claims the idempotency key first (PutItem if absent), then writes the job (PutItem
//     if absent). A racing create of the same key finds the claim and returns the job that holds
//     it, waiting briefly while that job is being written. A claim whose job never appeared (its
//     creator died between the two writes) is taken over after ClaimTimeout.
//   - Transition is a compare-and-swap on the job's version attribute: read the job
//     (strongly consistent), check Transition.From, apply pipeline.Transition.Apply, and write it
//     back only if the version is still the one read, else read again. Two racing workers never
//     lose an update and at most one leaves a given status.
//   - List queries two sparse global secondary indexes, IndexByCreated and IndexByStatus, sorted
//     by created_at then job id and sharded over ListShards partitions each, merging the shards
//     newest first. Index reads are eventually consistent on DynamoDB: a job may take a moment to
//     appear in List after Create returns (Get sees it at once).
//   - With Config.Retention set, a finished job (and its idempotency key) carries expires_at =
//     finish time + Retention, and DynamoDB's TTL deletes it some time after.
//   - The outbox (pipeline.Outbox) lives on the job items: a Transition with an EventID writes
//     its event into the job's item in the same conditional PutItem as the status, and the
//     sparse, keys-only index IndexByOutbox finds the jobs with events to deliver; see
//     ClaimEvents and outbox.go.
//   - JobStats (pipeline.StatsReader) reads counter items ("stats#<minute>#<shard>" and
//     "stats#live#<shard>") that each process adds its jobs' changes to with UpdateItem ADD
//     once a second, off the job path; see JobStats.
//
// The table is created by EnsureTable (run by `infleet init`) or from deploy/aws; Open only
// checks that it is there.
package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// ClaimTimeout is how old an idempotency key's claim must be, with no job written for it, before
// another Create takes the key over. A Create finds its job well within it unless its process
// died between claiming the key and writing the job.
const ClaimTimeout = time.Minute

// defaultClaimWait bounds how long Create waits for the job of a fresh claim held by another Create
// to appear before it gives up and asks the caller to retry.
const defaultClaimWait = 3 * time.Second

// Config configures a Store. Client and Table are required.
type Config struct {
	// Client is the DynamoDB client, built by the caller (region, credentials, endpoint).
	Client *ddb.Client
	// Table is the job table's name.
	Table string
	// Retention is how long a finished job is kept: a job that reaches a terminal status gets
	// expires_at = its update time + Retention, for DynamoDB's TTL. Default 0: kept forever.
	Retention time.Duration
	// Logger receives the store's logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// Validate reports every problem with c, each naming the field and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("dynamodb store: no client (build one with the AWS SDK and set Config.Client)"))
	}
	if c.Table == "" {
		errs = append(errs, errors.New("dynamodb store: table is required (set store.dynamodb.table, e.g. infleet-jobs)"))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("dynamodb store: retention %s is negative (use 0 to keep jobs forever)", c.Retention))
	}
	return errors.Join(errs...)
}

// Store is a pipeline.JobStore, pipeline.LimitStore, pipeline.Outbox and pipeline.Checker on
// one DynamoDB table, and a pipeline.StatsReader through counter items (see JobStats). It is safe for
// concurrent use by many goroutines and by many processes sharing the table. Its only
// resource is the goroutine that writes the job counts every second: Close stops it.
type Store struct {
	client    *ddb.Client
	table     string
	retention time.Duration
	log       zerolog.Logger
	// claimWait is defaultClaimWait; tests shorten it.
	claimWait time.Duration
	// noStats turns the figures' counters off, for benchmarks that measure their cost.
	noStats bool
	// counters buffers the figures' changes between flushes.
	counters counters
	// recountSettle is how long RecountLive waits after counting before it compares the
	// counters (two flushes); tests shorten it.
	recountSettle time.Duration
	// holder names this process in the recount lease item.
	holder string
	// lastSweep is when CancelledAmong last checked every job it was asked about (Unix ns).
	lastSweep atomic.Int64
	// outboxChecked is set once Check has looked for IndexByOutbox.
	outboxChecked atomic.Bool
}

var (
	_ pipeline.JobStore    = (*Store)(nil)
	_ pipeline.StatsReader = (*Store)(nil)
	_ pipeline.LimitStore  = (*Store)(nil)
	_ pipeline.Checker     = (*Store)(nil)
)

// Open returns a Store on cfg.Table after checking that the table exists and is ACTIVE. It
// creates nothing: run EnsureTable (`infleet init`) or deploy deploy/aws first. The context
// bounds only the check.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		client:        cfg.Client,
		table:         cfg.Table,
		retention:     cfg.Retention,
		claimWait:     defaultClaimWait,
		recountSettle: 2*statsFlush + statsFlush/2,
		holder:        holderName(),
		log:           cfg.Logger.With().Str("component", "dynamodb_store").Str("table", cfg.Table).Logger(),
	}
	if err := s.Check(ctx); err != nil {
		return nil, err
	}
	s.counters.stop, s.counters.done = make(chan struct{}), make(chan struct{})
	go s.runCounters()
	s.log.Info().Dur("retention", s.retention).Msg("dynamodb job store open")
	return s, nil
}

// Check reports whether the table exists and is ACTIVE (DescribeTable), for /readyz. It is
// cheap and safe to call concurrently.
func (s *Store) Check(ctx context.Context) error {
	out, err := s.client.DescribeTable(ctx, &ddb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		return s.wrap("describe table", err)
	}
	if st := out.Table.TableStatus; st != types.TableStatusActive && st != types.TableStatusUpdating {
		return fmt.Errorf("dynamodb store: table %q is %s, not ACTIVE (wait for it, or check it in the AWS console)", s.table, st)
	}
	if !s.outboxChecked.Swap(true) && missingOutboxIndex(tableDefinition(s.table), out.Table) {
		// Not fatal: events stay kept on their jobs and are delivered once the index exists.
		s.log.Error().Str("index", IndexByOutbox).Msg("the job table lacks the outbox index: lifecycle events are kept but not delivered until it is added (run \"infleet init\" for the fix)")
	}
	return nil
}

// Close writes the job counts still buffered for JobStats and stops their flushes (the
// client belongs to the caller). It is idempotent; a store used after Close writes each
// job's counts at once.
func (s *Store) Close() error {
	s.closeCounters()
	return nil
}

// wrap returns err as an error of the store's operation op, with the fix when the table is
// missing.
func (s *Store) wrap(op string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("DynamoDB table %q does not exist: run \"infleet init\" or create it (schema in deploy/aws): %s: %w", s.table, op, err)
	}
	return fmt.Errorf("dynamodb store: %s: %w", op, err)
}
