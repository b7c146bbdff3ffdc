package config

import (
	"cmp"
	"time"
)

// Defaults of the http section's body limits and wait, applied by ApplyDefaults (and so by Load)
// to every setting left unset.
const (
	DefaultMaxBodyBytes = 1 << 20
	// DefaultDynamoDBMaxBodyBytes is the body limit with store.kind dynamodb, whose items
	// (a job record holds its request) are at most 400 KB.
	DefaultDynamoDBMaxBodyBytes = 256 << 10
	// MaxDynamoDBBodyBytes is the largest http.max_body_bytes allowed with store.kind dynamodb.
	MaxDynamoDBBodyBytes = 384 << 10
	DefaultMaxWait       = 60 * time.Second
)

// Defaults of the HTTP server's bounds (the http section).
const (
	// DefaultReadHeaderTimeout, DefaultReadTimeout, DefaultWriteTimeout and DefaultIdleTimeout
	// bound how long a connection may take over a request's head, a whole request, an answer
	// and the wait for the next request.
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 75 * time.Second
	// DefaultMaxHeaderBytes caps a request's head (request line and headers).
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxInflightBodyBytes caps the request-body bytes held in memory across requests.
	DefaultMaxInflightBodyBytes = 64 << 20
)

// HTTP configures the HTTP API.
type HTTP struct {
	// MaxBodyBytes is the largest accepted request body (413 above). Default 1 MiB (256 KiB
	// with store.kind dynamodb, at most 384 KiB there: DynamoDB items hold 400 KB).
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty"`
	// MaxWait caps Prefer: wait=N. Default 60s.
	MaxWait time.Duration `yaml:"max_wait,omitempty"`
	// MaxInflightBodyBytes caps the bytes of request bodies held in memory at once, across all
	// requests; a body that finds no room within a short wait is refused with 503 and
	// Retry-After. Buffers are charged as they grow with what arrived, not with what
	// Content-Length announced. At least MaxBodyBytes. Default 64 MiB.
	MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes,omitempty"`
	// MaxHeaderBytes caps a request's head (request line and headers); larger is 431.
	// Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes,omitempty"`
	// ReadHeaderTimeout bounds reading a request's head. At most ReadTimeout. Default 10s, or
	// ReadTimeout when shorter.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout,omitempty"`
	// ReadTimeout bounds reading a whole request, body included; a body still arriving then
	// is answered 408. It does not bound the work on a request once read. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout,omitempty"`
	// WriteTimeout bounds the time from the end of a request's head to the end of its answer;
	// Prefer: wait=N gets N more, and an event stream gets WriteTimeout for each event. At
	// least ReadTimeout. Default 60s, or ReadTimeout when longer.
	WriteTimeout time.Duration `yaml:"write_timeout,omitempty"`
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	// Default 75s (longer than the 60s idle timeout of AWS load balancers, so they close
	// first).
	IdleTimeout time.Duration `yaml:"idle_timeout,omitempty"`
	// CORSOrigins are the browser origins allowed to call the API ("*" for any). Default none.
	CORSOrigins []string `yaml:"cors_origins,omitempty"`
	// TLSCertFile and TLSKeyFile (PEM) make the API serve HTTPS. Default none (plain HTTP).
	TLSCertFile string `yaml:"tls_cert_file,omitempty"`
	TLSKeyFile  string `yaml:"tls_key_file,omitempty"`
}

// applyDefaults fills the http section's unset settings; storeKind (store.kind) dynamodb lowers the
// default body limit.
func (h *HTTP) applyDefaults(storeKind string) {
	if storeKind == StoreDynamoDB {
		h.MaxBodyBytes = cmp.Or(h.MaxBodyBytes, DefaultDynamoDBMaxBodyBytes)
	}
	h.MaxBodyBytes = cmp.Or(h.MaxBodyBytes, DefaultMaxBodyBytes)
	h.MaxWait = cmp.Or(h.MaxWait, DefaultMaxWait)
	h.MaxInflightBodyBytes = cmp.Or(h.MaxInflightBodyBytes, DefaultMaxInflightBodyBytes)
	h.MaxHeaderBytes = cmp.Or(h.MaxHeaderBytes, DefaultMaxHeaderBytes)
	h.ReadTimeout = cmp.Or(h.ReadTimeout, DefaultReadTimeout)
	h.ReadHeaderTimeout = cmp.Or(h.ReadHeaderTimeout, min(DefaultReadHeaderTimeout, h.ReadTimeout))
	h.WriteTimeout = cmp.Or(h.WriteTimeout, max(DefaultWriteTimeout, h.ReadTimeout))
	h.IdleTimeout = cmp.Or(h.IdleTimeout, DefaultIdleTimeout)
}

// checkHTTP checks that the TLS files go together and that the body and time bounds do not
// contradict each other.
func (c *Config) checkHTTP(p *problems) {
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		p.add("http.tls_cert_file", "and http.tls_key_file go together; set both or neither")
	}
	if h := c.HTTP; h.MaxInflightBodyBytes < h.MaxBodyBytes {
		p.add("http.max_inflight_body_bytes", "is %d, less than http.max_body_bytes (%d), so the largest body could never be read; raise it to at least %d",
			h.MaxInflightBodyBytes, h.MaxBodyBytes, h.MaxBodyBytes)
	}
	if h := c.HTTP; h.WriteTimeout < h.ReadTimeout {
		p.add("http.write_timeout", "is %s, shorter than http.read_timeout (%s): a body that arrives in time could not be answered; make it at least %s",
			h.WriteTimeout, h.ReadTimeout, h.ReadTimeout)
	}
	if h := c.HTTP; h.ReadHeaderTimeout > h.ReadTimeout {
		p.add("http.read_header_timeout", "is %s, longer than http.read_timeout (%s), which bounds the head too; lower it or raise read_timeout",
			h.ReadHeaderTimeout, h.ReadTimeout)
	}
}
