// Package sqlite is a pipeline.JobStore on one SQLite file (modernc.org/sqlite, pure Go, no
// cgo): the job store of infleet's embedded mode.
//
// Writes use group commit. One goroutine owns the only write connection; Create, Transition,
// Delete and DeleteFinishedBefore (retention's batches) hand it a request and wait. It takes
// every request waiting (up to 256), runs them in one transaction, commits once and then
// answers each. Each request is one write statement, which SQLite undoes by itself when it
// fails; a failure that may have ended the transaction rolls the batch back and runs it again
// with each request in its own savepoint, so that one failing request does not fail the
// others. A call returns only after the transaction holding its write has committed. Reads (Get, List)
// use a pool of read-only connections that WAL mode lets run beside the writer, so a read never
// waits for a write and always sees every write that has returned.
//
// Durability: with Synchronous NORMAL (the default) a write that has returned survives a crash
// of the process (even SIGKILL), but the last commits may be lost on power loss or an
// operating-system crash; with FULL it survives power loss too, at the cost of an fsync per
// commit (one per group, not per write).
//
// WAL checkpoints (copying the log into the database file, with its fsyncs) run on a
// connection of their own every 250ms, so they stall neither the writer nor readers. Once a
// checkpoint has copied it all, the log is cut back to walSizeLimit, so the space a burst of
// writes took (or a stretch when checkpoints could not run, as on a full disk) is given back.
//
// A write refused for want of space fails with an error matching pipeline.ErrStorageFull; the
// store needs no reopening, and writes succeed again as soon as there is space.
//
// Several processes may open the same file (they wait up to BusyTimeout for each other's
// write lock), but group commit batches only within a process: run one infleet process per
// file for throughput.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/infleet/infleet/pipeline"
)

// Defaults applied by Open to a zero Config field.
const (
	DefaultBusyTimeout = 5 * time.Second
	DefaultSynchronous = SynchronousNormal
)

// The two accepted values of Config.Synchronous.
const (
	SynchronousNormal = "NORMAL"
	SynchronousFull   = "FULL"
)

const (
	// walSizeLimit is the size the write-ahead log is cut back to after a full checkpoint
	// (SQLite's journal_size_limit).
	walSizeLimit = 64 << 20
	// maxBatch caps how many write requests one transaction holds.
	maxBatch = 256
	// settleRounds caps how many times the writer yields for more requests before a batch; it
	// yields only while fewer than a quarter of the batch limit wait.
	settleRounds = 4
	// maxJoin caps how many creates may join a running batch beyond maxBatch.
	maxJoin = 256
	// gatherWait is how long the writer holds a batch of grouped writes only
	// (pipeline.Transition.Grouped) for more requests before it commits; gatherMin is how
	// many requests end that wait at once. See gather.
	gatherWait = 3 * time.Millisecond
	gatherMin  = maxBatch / 4
	// queueDepth is how many write requests of each kind (creates, other writes) may wait for
	// the writer before callers block.
	queueDepth = 1024
)

// Config configures a Store. The zero value of every field but Path is a usable default.
type Config struct {
	// Path is the database file. It and its directory are created when missing. Required.
	Path string
	// BusyTimeout is how long a connection waits for a lock held by another process before it
	// fails with "database is locked". Default 5s.
	BusyTimeout time.Duration
	// Synchronous is SQLite's synchronous setting: NORMAL (default; durable across process
	// crashes) or FULL (durable across power loss).
	Synchronous string
	// Logger receives the store's logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// withDefaults returns c with defaults applied.
func (c Config) withDefaults() Config {
	c.BusyTimeout = cmp.Or(c.BusyTimeout, DefaultBusyTimeout)
	c.Synchronous = strings.ToUpper(cmp.Or(c.Synchronous, DefaultSynchronous))
	return c
}

// Validate reports every problem with c, each naming the field and the fix.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Path == "":
		errs = append(errs, errors.New("sqlite store: path is required (set it to the database file, e.g. data/infleet.db)"))
	case strings.ContainsRune(c.Path, '?'):
		errs = append(errs, fmt.Errorf("sqlite store: path %q contains '?' (choose a file name without it)", c.Path))
	}
	if c.BusyTimeout < 0 {
		errs = append(errs, fmt.Errorf("sqlite store: busy_timeout %s is negative (leave it unset for %s)", c.BusyTimeout, DefaultBusyTimeout))
	}
	if s := strings.ToUpper(c.Synchronous); s != "" && s != SynchronousNormal && s != SynchronousFull {
		errs = append(errs, fmt.Errorf("sqlite store: synchronous %q is not supported (use NORMAL or FULL)", c.Synchronous))
	}
	return errors.Join(errs...)
}

// ErrClosed is returned by calls made on, or cut off by, a closed Store.
var ErrClosed = errors.New("sqlite store is closed (the process is shutting down; retry against a running instance)")

// Store is a pipeline.JobStore, pipeline.Expirer and pipeline.Checker on one SQLite file. It is safe for
// concurrent use by many goroutines. Close it to stop its writer and release the file.
type Store struct {
	log  zerolog.Logger
	path string
	sync string // PRAGMA synchronous of the write connection, read at Open: NORMAL or FULL

	wdb   *sql.DB   // the write database, holding exactly one connection: wconn
	wconn *sql.Conn // owned by the writer goroutine after Open
	w     writeStmts

	rdb *sql.DB   // the read-only pool
	get *sql.Stmt // Get, prepared on the read pool

	cdb   *sql.DB     // the checkpointer's database, holding one connection: cconn
	cconn *sql.Conn   // owned by the checkpointer goroutine after Open
	dirty atomic.Bool // set after each commit, cleared by the checkpointer
	// syncFull is Synchronous FULL: every commit syncs the WAL, so no writeback is started.
	syncFull bool
	// commits counts the write batches committed since Open.
	commits atomic.Int64
	// quietRows counts the transitions written by multi-row statements (quietrun.go).
	quietRows atomic.Int64

	tuning
	gatherTimer *time.Timer   // the writer's, for gather; stopped between uses
	creates     chan *request // Create's requests, taken before reqs
	reqs        chan *request // every other write request
	closing     chan struct{} // closed by Close: stop taking requests
	done        chan struct{} // closed by the writer when it has stopped

	checkpointDone chan struct{} // closed by the checkpointer when it has stopped

	closeOnce sync.Once
	closeErr  error
}

var (
	_ pipeline.JobStore = (*Store)(nil)
	_ pipeline.Checker  = (*Store)(nil)
)

// Open opens the store at cfg.Path, creating the file and bringing its schema up to date, and
// starts its writer. The context bounds only the opening.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return openWith(ctx, cfg, defaultTuning())
}

// tuning is how the writer forms its batches.
type tuning struct {
	batchLimit  int           // the most requests one transaction holds (1: no group commit)
	settleMax   int           // how many times the writer may yield before a batch (see settle)
	settleBelow int           // the writer yields only while fewer requests than this wait
	gatherWait  time.Duration // how long a batch of grouped writes only waits for more (see gather); 0: never
	gatherMin   int           // the batch size that ends gather's wait
	singleRows  bool          // every transition gets a statement of its own (no quiet runs)
}

// defaultTuning is the writer of Open.
func defaultTuning() tuning {
	return tuning{batchLimit: maxBatch, settleMax: settleRounds, settleBelow: maxBatch / 4,
		gatherWait: gatherWait, gatherMin: gatherMin}
}

func openWith(ctx context.Context, cfg Config, t tuning) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite store: create directory %s (check the permissions of data_dir): %w", dir, err)
		}
	}
	s := &Store{
		log:         cfg.Logger.With().Str("component", "sqlite_store").Logger(),
		path:        cfg.Path,
		tuning:      t,
		gatherTimer: stoppedTimer(),
		creates:     make(chan *request, queueDepth),
		reqs:        make(chan *request, queueDepth),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),

		checkpointDone: make(chan struct{}),
		syncFull:       cfg.Synchronous == SynchronousFull,
	}
	if err := s.openDatabases(ctx, cfg); err != nil {
		s.closeDatabases()
		return nil, err
	}
	go s.writeLoop()
	go s.checkpointLoop(s.cconn)
	return s, nil
}

func (s *Store) openDatabases(ctx context.Context, cfg Config) error {
	var err error
	s.wdb, err = sql.Open("sqlite", dsn(cfg, false))
	if err != nil {
		return fmt.Errorf("sqlite store: open %s: %w", cfg.Path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	s.wconn, err = connWhenFree(ctx, s.wdb, cfg.BusyTimeout)
	if err != nil {
		return fmt.Errorf("sqlite store: open %s (check that the file is a SQLite database and is writable): %w", cfg.Path, err)
	}
	if s.sync, err = readSynchronous(ctx, s.wconn); err != nil {
		return err
	}
	version, err := migrate(ctx, s.wconn)
	if err != nil {
		return err
	}
	if err := s.w.prepare(ctx, s.wconn); err != nil {
		return err
	}

	s.cdb, err = sql.Open("sqlite", dsn(cfg, false))
	if err != nil {
		return fmt.Errorf("sqlite store: open %s for checkpoints: %w", cfg.Path, err)
	}
	s.cdb.SetMaxOpenConns(1)
	if s.cconn, err = s.cdb.Conn(ctx); err != nil {
		return fmt.Errorf("sqlite store: open %s for checkpoints: %w", cfg.Path, err)
	}

	readers := max(4, runtime.GOMAXPROCS(0))
	s.rdb, err = sql.Open("sqlite", dsn(cfg, true))
	if err != nil {
		return fmt.Errorf("sqlite store: open %s for reading: %w", cfg.Path, err)
	}
	s.rdb.SetMaxOpenConns(readers)
	s.rdb.SetMaxIdleConns(readers)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	if s.get, err = s.rdb.PrepareContext(ctx, "SELECT "+columns+" FROM jobs WHERE job_id = ?"); err != nil {
		return fmt.Errorf("sqlite store: prepare read statement: %w", err)
	}
	s.log.Info().Str("path", cfg.Path).Str("synchronous", cfg.Synchronous).Int("schema_version", version).
		Int("read_connections", readers).Msg("sqlite job store open")
	return nil
}

// readSynchronous reads PRAGMA synchronous on conn and names it as Config.Synchronous does.
func readSynchronous(ctx context.Context, conn *sql.Conn) (string, error) {
	var level int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil {
		return "", fmt.Errorf("sqlite store: read PRAGMA synchronous: %w", err)
	}
	switch level {
	case 0:
		return "OFF", nil
	case 1:
		return SynchronousNormal, nil
	case 2:
		return SynchronousFull, nil
	case 3:
		return "EXTRA", nil
	}
	return strconv.Itoa(level), nil
}

// Synchronous returns the synchronous setting SQLite reported on the write connection when the
// store opened — the one every commit runs under: "NORMAL" (a commit survives a crash of the
// process) or "FULL" (it is fsynced, and survives a power loss too). It is the value of
// Config.Synchronous as SQLite applied it, read back rather than remembered.
func (s *Store) Synchronous() string { return s.sync }

// dsn returns the data source name of a write or read-only connection to cfg.Path.
func dsn(cfg Config, readOnly bool) string {
	v := url.Values{}
	v.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	v.Add("_pragma", "foreign_keys(0)")
	v.Add("_pragma", "temp_store(MEMORY)")
	v.Add("_pragma", "synchronous("+cfg.Synchronous+")")
	if readOnly {
		v.Add("_pragma", "query_only(1)")
	} else {
		v.Add("_pragma", "journal_mode(WAL)")
		v.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
		v.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint))
	}
	return cfg.Path + "?" + v.Encode()
}

//go:embed migrations/*.sql
var migrations embed.FS

// migrate applies, in one immediate transaction, every embedded migration newer than the
// file's user_version, and returns the resulting version. Migration N is the N-th file in
// name order; files are only ever added.
func migrate(ctx context.Context, conn *sql.Conn) (version int, err error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("sqlite store: list migrations: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return 0, fmt.Errorf("sqlite store: lock the database for migration (another process may hold it; retry or raise busy_timeout): %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, fmt.Errorf("sqlite store: read schema version: %w", err)
	}
	if version > len(files) {
		return 0, fmt.Errorf("sqlite store: schema version %d is newer than this build knows (%d): run a newer infleet or point path at another file", version, len(files))
	}
	for i := version; i < len(files); i++ {
		script, err := migrations.ReadFile(files[i])
		if err != nil {
			return 0, fmt.Errorf("sqlite store: read migration %s: %w", files[i], err)
		}
		if _, err := conn.ExecContext(ctx, string(script)); err != nil {
			return 0, fmt.Errorf("sqlite store: apply migration %s: %w", files[i], err)
		}
	}
	if version < len(files) {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(files))); err != nil {
			return 0, fmt.Errorf("sqlite store: record schema version: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("sqlite store: commit migration: %w", err)
	}
	return len(files), nil
}

// Check reports whether the store can serve reads and writes, for /readyz. It is cheap and
// safe to call concurrently.
func (s *Store) Check(ctx context.Context) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM jobs LIMIT 1)").Scan(&n); err != nil {
		return fmt.Errorf("sqlite store %s: read: %w", s.path, err)
	}
	return nil
}

// Close stops taking writes, lets the writer finish the requests already handed to it, and
// closes the database. Calls made after Close fail with ErrClosed or a closed-database error.
// Close is idempotent and safe to call concurrently; every call returns the first's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.done
		<-s.checkpointDone
		s.closeErr = s.closeDatabases()
		s.log.Info().Str("path", s.path).Err(s.closeErr).Msg("sqlite job store closed")
	})
	return s.closeErr
}

func (s *Store) closeDatabases() error {
	var errs []error
	if s.get != nil {
		errs = append(errs, s.get.Close())
	}
	errs = append(errs, s.w.close())
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.cconn != nil {
		errs = append(errs, s.cconn.Close())
	}
	if s.cdb != nil {
		errs = append(errs, s.cdb.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite store: close %s: %w", s.path, err)
	}
	return nil
}
