package main

import (
	"log"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
)

// newHTTPServer returns the server that serve, ingress and worker run handler on, bounded by
// the http section: how long a request's head, a whole request, an answer and an idle
// keep-alive connection may take, and how large a request's head may be. net/http's own
// complaints (accept errors, failed TLS handshakes) are logged as warnings on logger.
func newHTTPServer(cfg config.HTTP, handler http.Handler, logger zerolog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          log.New(warnWriter{logger}, "", 0),
	}
}

// warnWriter logs each line written to it as a warning.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
