package fmsim

import (
	"net/http"
	"time"
)

// readHeaderTimeout bounds how long a client may take to send a request's headers.
const readHeaderTimeout = 10 * time.Second

// HTTPServer returns an http.Server that serves s on one port with HTTP/1.1 and unencrypted
// HTTP/2 (prior knowledge, which the AWS SDK for JavaScript's default handler sends to an
// http:// endpoint), and HTTP/2 over TLS when served with TLS. Start it with Serve on a listener;
// call s.Close before its Shutdown so that hanging calls end. Each call returns a new server.
func (s *Server) HTTPServer() *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{Handler: s, ReadHeaderTimeout: readHeaderTimeout, Protocols: &p}
}
