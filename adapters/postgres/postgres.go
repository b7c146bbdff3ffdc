// Package postgres is a pipeline.JobStore on PostgreSQL (pgx): the job store of a fleet, shared
// by every ingress and worker process whatever the transport.
//
// Every write is atomic in the database, so any number of processes may share one: Create is
// an INSERT ... ON CONFLICT DO NOTHING on the job id and the (tenant, idempotency key) pair,
// then, when it inserted nothing, a read of the job that holds them; Transition is one
// conditional UPDATE ... WHERE job_id = $1 AND status = ANY(From) RETURNING the row (nothing
// for a Transition.Unreturned: a worker's completion), which says
// pipeline.Transition.Apply in SQL (the conformance suite checks the two agree field by field),
// so a state change is one statement that neither reads the row first nor sends the columns it
// leaves alone. Racing transitions serialize on the row and at most one leaves a given
// status. Only a transition that finds no row reads the job, to tell a conflict from a missing
// job.
//
// Creates and Transitions are batched: the Store's writers (two for a pool of up to 16
// connections, see Config.MaxConns) each take the writes waiting at the moment (up to 256) and
// send them as one pipelined pgx.Batch, which the server runs as one implicit transaction: one
// round trip and one commit for all of them, with a batch in flight per writer. A write
// answers after its batch has committed; one write's failure, conflict or missing job does not
// fail the others. Reads, Delete and DeleteFinishedBefore go to the pool directly.
//
// The schema is created by Migrate (run by `infleet init`), not by Open: migrations are
// embedded, recorded in the schema_migrations table and applied under an advisory lock, so
// running Migrate from many processes at once is safe. All tables live in Config.Schema.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// Defaults applied by Open to a zero Config field.
const (
	// DefaultMaxConns is the pool size when neither Config.MaxConns nor the DSN's
	// pool_max_conns sets it.
	DefaultMaxConns = 16
	// DefaultSchema is the schema holding infleet's tables.
	DefaultSchema = "public"
)

// Config configures a Store. Every field but DSN has a usable zero value.
type Config struct {
	// DSN is the connection string (postgres://user@host:port/db?sslmode=... or key=value
	// form). Required. It may hold a password: it is never logged.
	DSN string
	// MaxConns caps the connections the store opens. Default: the DSN's pool_max_conns, else
	// DefaultMaxConns. A few of them carry the store's batched Creates and Transitions, one
	// writer each: one writer per 8 connections, at least 2 and at most half the pool (at
	// least 1), so 2 for the default pool. Reads and the other writes share the rest.
	MaxConns int
	// Schema is the PostgreSQL schema holding the tables; Migrate creates it when missing.
	// Default public. Several infleet deployments may share one database with one schema each.
	Schema string
	// Logger receives the store's logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// Validate reports every problem with c, each naming the field and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("postgres store: dsn is required (set store.postgres.dsn, e.g. postgres://infleet@db:5432/infleet)"))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("postgres store: max_conns %d is negative (leave it unset for %d)", c.MaxConns, DefaultMaxConns))
	}
	if c.Schema != "" && !validIdent(c.Schema) {
		errs = append(errs, fmt.Errorf("postgres store: schema %q is not a plain identifier (use lower-case letters, digits and _)", c.Schema))
	}
	return errors.Join(errs...)
}

// validIdent reports whether s is a lower-case identifier that needs no quoting.
func validIdent(s string) bool {
	if s == "" || len(s) > 63 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// Store is a pipeline.JobStore and pipeline.Checker on PostgreSQL. It is safe for concurrent
// use by many goroutines and many processes. Close it to stop its writers and release its
// connections.
type Store struct {
	pool   *pgxpool.Pool
	schema string
	log    zerolog.Logger

	reqs    chan *request  // writes waiting for a writer
	closing chan struct{}  // closed by Close: stop taking writes
	done    chan struct{}  // closed when every writer has stopped
	writers sync.WaitGroup // the writer goroutines
	batches atomic.Int64   // batches the writers have taken, for tests
	hold    chan struct{}  // tests only: a writer that took a write waits for it before filling its batch

	statsPruned atomic.Int64 // when PutModelStats last deleted old figures, Unix ns

	closeOnce sync.Once
}

var (
	_ pipeline.JobStore = (*Store)(nil)
	_ pipeline.Checker  = (*Store)(nil)
)

// Open connects to the database, checks that it answers and starts the store's writers (see
// Config.MaxConns). It does not create the schema: call Migrate (infleet init) first. The
// context bounds only the opening.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg, nil)
}

func open(ctx context.Context, cfg Config, hold chan struct{}) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's parse errors may quote the DSN; do not pass the text on.
		return nil, errors.New("postgres store: cannot parse dsn (use postgres://user@host:port/database?sslmode=disable or the key=value form)")
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = int32(min(cfg.MaxConns, 1<<20))
	} else if !strings.Contains(cfg.DSN, "pool_max_conns") {
		pc.MaxConns = DefaultMaxConns
	}
	schema := cmp.Or(cfg.Schema, DefaultSchema)
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres store: create connection pool: %w", err)
	}
	s := &Store{
		pool: pool, schema: schema, log: cfg.Logger.With().Str("component", "postgres_store").Logger(),
		reqs: make(chan *request, queueDepth), closing: make(chan struct{}), done: make(chan struct{}), hold: hold,
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: connect to %s:%d/%s (check store.postgres.dsn and that the server is up): %w",
			pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database, err)
	}
	writers := writerCount(int(pc.MaxConns))
	for range writers {
		s.writers.Go(s.writeLoop)
	}
	go func() {
		s.writers.Wait()
		close(s.done)
	}()
	s.log.Info().Str("host", pc.ConnConfig.Host).Uint16("port", pc.ConnConfig.Port).Str("database", pc.ConnConfig.Database).
		Str("schema", schema).Int32("max_conns", pc.MaxConns).Int("writers", writers).Msg("postgres job store open")
	return s, nil
}

// writerCount is how many writers a store with a pool of maxConns connections runs: one per 8
// connections, at least 2 (so that one slow batch does not hold up every write) and at most
// half the pool (at least 1), leaving the rest to reads. More writers send smaller batches,
// each with its own commit: in BenchmarkCreateTransitionParallel (64 goroutines, local server)
// 8 writers ran about 20% fewer jobs/s than 2, with fsync on and off.
func writerCount(maxConns int) int {
	return min(max(2, maxConns/8), max(1, maxConns/2))
}

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockKey is the advisory lock Migrate holds; the schema name is hashed in so that
// deployments in different schemas do not wait for each other.
const migrationLockKey = "infleet_migrate:"

// Migrate brings the schema up to date and returns its version: it creates Config.Schema and
// schema_migrations when missing, then applies each embedded migration newer than the
// recorded version, each in its own transaction with its version row. It holds a session
// advisory lock while it runs, so concurrent calls from many processes apply each migration
// once; calling it on an up-to-date schema changes nothing. Migration N is the N-th file
// under migrations/ in name order (NNNN_name.sql); files are only ever added.
func (s *Store) Migrate(ctx context.Context) (version int, err error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("postgres store: list migrations: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres store: connect for migration: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1))", migrationLockKey+s.schema); err != nil {
		return 0, fmt.Errorf("postgres store: take the migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext($1))", migrationLockKey+s.schema); uerr != nil {
			// A session lock outlives a failed unlock only with its connection: drop it.
			_ = conn.Conn().Close(context.Background())
			err = errors.Join(err, fmt.Errorf("postgres store: release the migration lock: %w", uerr))
		}
	}()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+s.schema); err != nil {
		return 0, fmt.Errorf("postgres store: create schema %s (the user needs CREATE on the database, or create it beforehand): %w", s.schema, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return 0, fmt.Errorf("postgres store: create schema_migrations: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version); err != nil {
		return 0, fmt.Errorf("postgres store: read schema version: %w", err)
	}
	if version > len(files) {
		return version, fmt.Errorf("postgres store: schema version %d is newer than this build knows (%d): run a newer infleet or use another schema", version, len(files))
	}
	for i := version; i < len(files); i++ {
		script, err := migrations.ReadFile(files[i])
		if err != nil {
			return version, fmt.Errorf("postgres store: read migration %s: %w", files[i], err)
		}
		name := strings.TrimPrefix(files[i], "migrations/")
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(script)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", i+1, name)
			return err
		})
		if err != nil {
			return version, fmt.Errorf("postgres store: apply migration %s: %w", name, err)
		}
		version = i + 1
		s.log.Info().Int("schema_version", version).Str("migration", name).Str("schema", s.schema).Msg("migration applied")
	}
	return version, nil
}

// Check reports whether the database answers and the schema exists, for /readyz. It is cheap
// and safe to call concurrently.
func (s *Store) Check(ctx context.Context) error {
	var n int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM (SELECT 1 FROM jobs LIMIT 1) j").Scan(&n); err != nil {
		return s.wrap("check", err)
	}
	return nil
}

// Close stops taking writes, lets the writers finish the writes already handed to them, waits
// for calls in progress to give back their connections, then closes them. It is idempotent and
// safe to call concurrently; writes made after Close fail with ErrClosed, other calls with a
// closed-pool error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.done
		s.pool.Close()
		s.log.Info().Str("schema", s.schema).Msg("postgres job store closed")
	})
	return nil
}

// wrap returns err as an error of the store's operation op, with the fix when the schema is
// missing.
func (s *Store) wrap(op string, err error) error {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P01" {
		return fmt.Errorf("postgres store: %s: the jobs table is missing from schema %s (run `infleet init` to create it): %w", op, s.schema, err)
	}
	return fmt.Errorf("postgres store: %s: %w", op, err)
}
