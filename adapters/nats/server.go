package nats

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// DefaultReadyTimeout bounds how long StartServer waits for the server to accept connections.
const DefaultReadyTimeout = 10 * time.Second

// DefaultServerName names the embedded server in its logs and in JetStream metadata.
const DefaultServerName = "infleet-embedded"

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
	return errors.Join(errs...)
}

// Server is a running embedded NATS JetStream server. Its methods are safe for concurrent use.
type Server struct {
	ns       *server.Server
	log      zerolog.Logger
	shutdown sync.Once
}

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
	s := &Server{ns: ns, log: cfg.Logger}
	s.log.Debug().Str("store_dir", cfg.StoreDir).Str("listen", cfg.Listen).Msg("embedded nats server ready")
	return s, nil
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

// ClientURL is the nats:// URL other processes use to reach the server; it is meaningful only
// when ServerConfig.Listen was set.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server: JetStream flushes its files and every connection is closed. It
// returns when the server has stopped and is safe to call more than once and concurrently.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() {
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
