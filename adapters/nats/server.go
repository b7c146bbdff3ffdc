package nats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// DefaultReadyTimeout bounds how long StartServer waits for the server to accept connections.
const DefaultReadyTimeout = 10 * time.Second

// DefaultServerName names the embedded server in its logs and in JetStream metadata.
const DefaultServerName = "infleet-embedded"

// Defaults of the embedded server's watch over its storage.
const (
	// DefaultMinFreeBytes is the free space under the store directory below which the
	// embedded server counts as full.
	DefaultMinFreeBytes = 1 << 20
	// DefaultWatchInterval is how often the embedded server checks JetStream and free space.
	DefaultWatchInterval = time.Second
	// maxRestartWait caps the wait between attempts to restart a JetStream that keeps failing.
	maxRestartWait = time.Minute
)

// ServerConfig configures the embedded NATS JetStream server.
type ServerConfig struct {
	// StoreDir is where JetStream keeps its files (required). Messages survive a restart on the
	// same StoreDir.
	StoreDir string
	// Listen, when set ("127.0.0.1:4222", ":4222"), also opens a TCP client listener so other
	// processes can connect. Empty (the default) means in-process connections only.
	Listen string
	// SyncAlways makes JetStream fsync every write: a published message then survives power
	// loss too, at a large cost in throughput. The default (false) survives a crash of the
	// process; the operating system writes the files out within JetStream's sync interval
	// (2 minutes).
	SyncAlways bool
	// ReadyTimeout bounds the wait for the server to start (default DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// MinFreeBytes is the free space under StoreDir below which the server counts as full
	// (default DefaultMinFreeBytes): Err then reports it, so that publishers gated on Err
	// refuse messages before JetStream itself runs out of space mid-write.
	MinFreeBytes int64
	// WatchInterval is how often the server checks that JetStream can write and how much
	// space is free (default DefaultWatchInterval); see Err.
	WatchInterval time.Duration
	// Logger receives the server's own log lines (warnings and errors at their level, notices
	// at debug). The zero value discards them.
	Logger zerolog.Logger
}

// Validate reports every problem in cfg, each naming the field and the fix.
func (cfg ServerConfig) Validate() error {
	var errs []error
	if cfg.StoreDir == "" {
		errs = append(errs, errors.New("nats server: StoreDir is empty (set data_dir; JetStream keeps its files under it)"))
	}
	if cfg.Listen != "" {
		if _, _, err := splitListen(cfg.Listen); err != nil {
			errs = append(errs, fmt.Errorf("nats server: Listen %q: %w (use host:port, e.g. 127.0.0.1:4222)", cfg.Listen, err))
		}
	}
	if cfg.MinFreeBytes < 0 || cfg.WatchInterval < 0 {
		errs = append(errs, fmt.Errorf("nats server: MinFreeBytes and WatchInterval cannot be negative (leave them 0 for %d bytes and %s)", DefaultMinFreeBytes, DefaultWatchInterval))
	}
	return errors.Join(errs...)
}

// Server is a running embedded NATS JetStream server. Its methods are safe for concurrent use.
//
// JetStream stops writing a stream for good after a failed write (a full disk): every later
// publish to it goes unanswered, until the server restarts. So the Server watches its storage:
// it reports a full disk through Err before JetStream meets it, and when JetStream has stopped
// writing anyway it restarts JetStream in place, without dropping client connections, as soon
// as space is free again. Streams, consumers and stored messages survive the restart.
type Server struct {
	ns       *server.Server
	opts     *server.Options
	log      zerolog.Logger
	storeDir string
	minFree  int64
	shutdown sync.Once

	state       atomic.Pointer[serverState] // what Err reports, refreshed by watch
	quit        chan struct{}               // closed by Shutdown: stop watching
	watchDone   chan struct{}               // closed when watch returns
	restartWait time.Duration               // owned by watch
	nextRestart time.Time                   // owned by watch
}

// serverState is what the last check found; err nil means the server can store messages.
type serverState struct{ err error }

// StartServer starts an in-process NATS server with JetStream enabled and file storage under
// cfg.StoreDir, and returns once it accepts connections. Without cfg.Listen it opens no
// network listener at all. Call Shutdown to stop it.
func StartServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: DefaultServerName,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		SyncAlways: cfg.SyncAlways,
		DontListen: cfg.Listen == "",
		NoSigs:     true,
	}
	if cfg.Listen != "" {
		host, port, _ := splitListen(cfg.Listen)
		opts.Host, opts.Port = host, port
		if port == 0 {
			opts.Port = server.RANDOM_PORT // for the server, 0 means its default port, 4222
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats server: %w (check transport settings and data_dir)", err)
	}
	ns.SetLoggerV2(serverLogger{log: cfg.Logger}, false, false, false)
	go ns.Start()
	timeout := cmp.Or(cfg.ReadyTimeout, DefaultReadyTimeout)
	if !ns.ReadyForConnections(timeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats server not ready after %s (is %s writable and not used by another infleet process?)", timeout, cfg.StoreDir)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats server started without JetStream (check that %s is writable and has free space)", cfg.StoreDir)
	}
	s := &Server{
		ns: ns, opts: opts, log: cfg.Logger, storeDir: cfg.StoreDir,
		minFree: cmp.Or(cfg.MinFreeBytes, DefaultMinFreeBytes),
		quit:    make(chan struct{}), watchDone: make(chan struct{}),
	}
	s.refresh()
	go s.watch(cmp.Or(cfg.WatchInterval, DefaultWatchInterval))
	s.log.Debug().Str("store_dir", cfg.StoreDir).Str("listen", cfg.Listen).Msg("embedded nats server ready")
	return s, nil
}

// Err reports why the server cannot store messages now, or nil when it can. It fails with an
// error matching pipeline.ErrStorageFull while less than MinFreeBytes is free under StoreDir,
// or while JetStream, stopped by a write that found the disk full, waits for space to be
// restarted; with another error when JetStream stopped for another reason. It reads what the
// last check found (every WatchInterval), so it is cheap enough to call before every publish.
func (s *Server) Err() error {
	if st := s.state.Load(); st != nil {
		return st.err
	}
	return nil
}

// Check is Err as a readiness check (pipeline.Checker).
func (s *Server) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Err()
}

// watch refreshes the state every interval until Shutdown.
func (s *Server) watch(interval time.Duration) {
	defer close(s.watchDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.refresh()
		}
	}
}

// refresh checks free space and JetStream, restarts JetStream when it stopped writing and
// there is space again, and records what Err reports.
func (s *Server) refresh() {
	free, known := freeBytes(s.storeDir)
	low := known && free < s.minFree
	jsErr := s.jetStreamErr()
	if jsErr != nil && !low && !time.Now().Before(s.nextRestart) {
		s.restartJetStream(jsErr)
		jsErr = s.jetStreamErr()
		if jsErr != nil {
			s.restartWait = min(max(2*s.restartWait, 2*time.Second), maxRestartWait)
			s.nextRestart = time.Now().Add(s.restartWait)
		}
	}
	if jsErr == nil {
		s.restartWait, s.nextRestart = 0, time.Time{}
	}
	var err error
	switch {
	case low:
		err = fmt.Errorf("embedded queue: %d bytes free under %s, less than the %d it keeps in reserve (free space on that volume): %w",
			free, s.storeDir, s.minFree, pipeline.ErrStorageFull)
	case jsErr != nil && strings.Contains(jsErr.Error(), "no space left"):
		err = fmt.Errorf("embedded queue: %w: %w", jsErr, pipeline.ErrStorageFull)
	case jsErr != nil:
		err = fmt.Errorf("embedded queue cannot store messages (check %s and the log): %w", s.storeDir, jsErr)
	}
	if prev := s.Err(); (prev == nil) != (err == nil) {
		if err != nil {
			s.log.Warn().Err(err).Msg("embedded queue: not storing messages")
		} else {
			s.log.Info().Str("store_dir", s.storeDir).Msg("embedded queue: storing messages again")
		}
	}
	s.state.Store(&serverState{err: err})
}

// jetStreamErr reports whether JetStream is enabled and every stream can still write. Other
// findings of the health check (a stream being created, say) are not its business.
func (s *Server) jetStreamErr() error {
	if !s.ns.JetStreamEnabled() {
		return errors.New("JetStream is not enabled")
	}
	h := s.ns.Healthz(&server.HealthzOptions{Details: true})
	if h == nil {
		return nil
	}
	var errs []error
	for _, e := range h.Errors {
		if e.Type == server.HealthzErrorJetStream || strings.Contains(e.Error, "write error") {
			errs = append(errs, errors.New(e.Error))
		}
	}
	return errors.Join(errs...)
}

// restartJetStream stops JetStream and starts it again on the same store, with the
// configuration StartServer gave it; a stream that stopped writing after a failed write
// writes again. Client connections stay up: their requests fail while JetStream is down, and
// consumers bind again.
func (s *Server) restartJetStream(cause error) {
	s.log.Warn().Err(cause).Str("store_dir", s.storeDir).
		Msg("embedded queue: JetStream stopped writing; there is space again, restarting it")
	if err := s.ns.ShutdownJetStream(); err != nil {
		s.log.Error().Err(err).Msg("embedded queue: stop JetStream")
	}
	o := s.opts
	err := s.ns.EnableJetStream(&server.JetStreamConfig{
		StoreDir:     o.StoreDir,
		SyncInterval: o.SyncInterval,
		SyncAlways:   o.SyncAlways,
		Strict:       !o.NoJetStreamStrict,
		MaxMemory:    o.JetStreamMaxMemory,
		MaxStore:     o.JetStreamMaxStore,
		Domain:       o.JetStreamDomain,
		CompressOK:   true,
		UniqueTag:    o.JetStreamUniqueTag,
	})
	if err != nil {
		s.log.Error().Err(err).Str("store_dir", s.storeDir).Msg("embedded queue: restart JetStream failed; will try again")
		return
	}
	s.log.Info().Str("store_dir", s.storeDir).Msg("embedded queue: JetStream restarted")
}

// Connect opens a new client connection to the server, in-process (no network). The caller
// owns the connection and closes it (Drain or Close) before Shutdown.
func (s *Server) Connect() (*natsgo.Conn, error) {
	nc, err := natsgo.Connect("",
		natsgo.InProcessServer(s.ns),
		natsgo.Name("infleet"),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats server: %w (was it shut down?)", err)
	}
	return nc, nil
}

// SyncAlways reports whether the running JetStream fsyncs every write (ServerConfig.SyncAlways),
// read back from JetStream's own configuration; false also while JetStream is down (being
// restarted after a failed write, or after Shutdown).
func (s *Server) SyncAlways() bool {
	c := s.ns.JetStreamConfig()
	return c != nil && c.SyncAlways
}

// ClientURL is the nats:// URL other processes use to reach the server; it is meaningful only
// when ServerConfig.Listen was set.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server: JetStream flushes its files and every connection is closed. It
// returns when the server has stopped and is safe to call more than once and concurrently.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() {
		close(s.quit)
		<-s.watchDone
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.log.Debug().Msg("embedded nats server stopped")
	})
}

func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// serverLogger adapts zerolog to the NATS server's printf-style Logger. The server's notices
// are chatty start-up banners, so they go to debug.
type serverLogger struct{ log zerolog.Logger }

func (l serverLogger) Noticef(format string, v ...any) {
	l.log.Debug().Str("component", "nats_server").Msgf(format, v...)
}
func (l serverLogger) Warnf(format string, v ...any) {
	l.log.Warn().Str("component", "nats_server").Msgf(format, v...)
}
func (l serverLogger) Fatalf(format string, v ...any) {
	l.log.Error().Str("component", "nats_server").Bool("fatal", true).Msgf(format, v...)
}
func (l serverLogger) Errorf(format string, v ...any) {
	l.log.Error().Str("component", "nats_server").Msgf(format, v...)
}
func (l serverLogger) Debugf(format string, v ...any) {
	l.log.Trace().Str("component", "nats_server").Msgf(format, v...)
}
func (l serverLogger) Tracef(format string, v ...any) {
	l.log.Trace().Str("component", "nats_server").Msgf(format, v...)
}
