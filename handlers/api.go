// Package handlers is infleet's driving side: the HTTP API and the message handlers. Handlers
// are thin: they decode, validate and answer, and leave the work to the pipeline.
package handlers

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
	"github.com/infleet/infleet/schemas"
)

// Jobs is what the HTTP API needs from the pipeline. Implementations are safe for concurrent use;
// intake.Service is the production one.
type Jobs interface {
	// Submit records and queues one job. The job is already schema-valid. A non-empty
	// job.IdempotencyKey that was seen before for the tenant returns the first job with
	// created=false. Errors: wraps pipeline.ErrUnavailable when the queue or store cannot be
	// reached (-> 503, nothing half-written).
	Submit(ctx context.Context, job messages.Job, opt intake.SubmitOptions) (messages.JobRecord, bool, error)
	// Get returns the job; pipeline.ErrNotFound when missing or of another tenant.
	Get(ctx context.Context, id, tenant string) (messages.JobRecord, error)
	// Cancel cancels a live job; pipeline.ErrNotFound, or pipeline.ErrConflict with the current
	// record when it already ended.
	Cancel(ctx context.Context, id, tenant string) (messages.JobRecord, error)
	// List returns a page of jobs matching q, newest first, and the cursor of the next page.
	List(ctx context.Context, q pipeline.ListQuery) ([]messages.JobRecord, string, error)
	// Result opens the stored result JSON; pipeline.ErrNotFound until the job is COMPLETED.
	Result(ctx context.Context, id, tenant string) (io.ReadCloser, error)
	// Watch sends the job's record now and at each status change, and closes the channel after
	// a terminal status or when ctx ends. pipeline.ErrNotFound as Get.
	Watch(ctx context.Context, id, tenant string) (<-chan messages.JobRecord, error)
	// Ready reports whether queue, store and result store are reachable.
	Ready(ctx context.Context) error
}

// Defaults of APIConfig.
const (
	DefaultMaxBodyBytes int64 = 1 << 20
	DefaultMaxWait            = 60 * time.Second
	DefaultHeartbeat          = 15 * time.Second
	DefaultReadyTimeout       = 3 * time.Second
	// DefaultMaxInflightBodyBytes is the default of APIConfig.MaxInflightBodyBytes.
	DefaultMaxInflightBodyBytes int64 = 64 << 20
	// DefaultInflightBodyWait is the default of APIConfig.InflightBodyWait.
	DefaultInflightBodyWait = 2 * time.Second
)

// APIConfig configures the HTTP API. Only Jobs is required.
type APIConfig struct {
	// Jobs is the pipeline the API drives. Required.
	Jobs Jobs
	// MaxBodyBytes caps a request body; larger bodies get 413. Default 1 MiB.
	MaxBodyBytes int64
	// MaxWait caps the N of a "Prefer: wait=N" request; larger values are lowered to it.
	// Default 60s.
	MaxWait time.Duration
	// MaxInflightBodyBytes caps the bytes of request bodies held in memory at once, across
	// every request of this handler. A body is charged as its buffer grows with the bytes
	// that arrived (never with what Content-Length announces) and until its route is done with
	// it. A body that finds no room within InflightBodyWait is refused with a 503 problem and
	// Retry-After. Raised, when lower, so that one body of MaxBodyBytes fits. Default 64 MiB.
	MaxInflightBodyBytes int64
	// InflightBodyWait is how long a body waits for room under MaxInflightBodyBytes.
	// Default 2s.
	InflightBodyWait time.Duration
	// WriteTimeout is the server's http.Server.WriteTimeout, which the routes that wait move:
	// "Prefer: wait=N" answers within N plus WriteTimeout, and an event stream has
	// WriteTimeout for each event. Zero means the server has none, and neither have they.
	WriteTimeout time.Duration
	// Heartbeat is how often an idle event stream gets a comment line, so proxies keep it open.
	// Default 15s.
	Heartbeat time.Duration
	// ReadyTimeout bounds the dependency checks of GET /readyz. Default 3s.
	ReadyTimeout time.Duration
	// Metrics is served at GET /metrics (the Prometheus handler); nil answers 404.
	Metrics http.Handler
	// Logger receives the access log and handler errors; the zero logger logs nothing.
	Logger zerolog.Logger
	// Observe, when set, is told of every finished request (route, status, duration).
	Observe ObserveFunc
	// Middleware wraps the routes inside the built-in request id, access log and recover
	// middleware, outermost first: authentication goes here, and sets the tenant with
	// ContextWithTenant.
	Middleware []func(http.Handler) http.Handler
	// Operations, when set, serves the operator routes (/v1/dead-letters...), each behind
	// RequireOperator.
	Operations Operations
	// MaskInput, when set, masks the texts GET /v1/jobs/{id}/request shows: the values the
	// input guardrails anonymize. Without it the texts are shown as accepted.
	MaskInput MaskFunc
	// ModelReports, when set, serves GET /v1/models behind RequireOperator.
	ModelReports ModelReportsFunc
	// Deltas, when set, feeds the "delta" events of GET /v1/jobs/{id}/events for jobs
	// submitted with "stream": true: the process's pipeline.Hub, or a relay from the worker
	// that runs the job. Nil sends status events only.
	Deltas pipeline.DeltaFeed
	// Usage, when set, serves GET /v1/usage from it: operators see every tenant's usage,
	// other callers their own tenant's.
	Usage pipeline.UsageStore
}

// api holds the configured routes' shared state. Its methods are safe for concurrent use.
type api struct {
	cfg APIConfig
	log zerolog.Logger
	mux *http.ServeMux
	// bodies is the budget of MaxInflightBodyBytes.
	bodies *semaphore.Weighted
}

// NewAPI returns the HTTP API described in CONTRACT.md: the /v1/jobs routes, /healthz, /readyz,
// /metrics and /openapi.json. Every error answer is an RFC 9457 problem. Middleware applies in
// this order, outermost first: RequestID, AccessLog, Recover, route resolution (404 and 405),
// cfg.Middleware, then the routes. Request bodies are read as their bytes arrive, within
// MaxBodyBytes each and MaxInflightBodyBytes together; a refused body is drained, within
// bounds, before its HTTP/1 connection closes, so the client reads the refusal.
// The handler is safe for concurrent use.
func NewAPI(cfg APIConfig) (http.Handler, error) {
	if cfg.Jobs == nil {
		return nil, errors.New("api: no Jobs configured (wire an intake.Service into APIConfig.Jobs)")
	}
	a := newAPI(cfg)
	cfg = a.cfg

	a.mux.HandleFunc("POST /v1/jobs", a.postJob)
	a.mux.HandleFunc("POST /v1/jobs:batch", a.postBatch)
	a.mux.HandleFunc("GET /v1/jobs", a.listJobs)
	a.mux.HandleFunc("GET /v1/jobs/{id}", a.getJob)
	a.mux.HandleFunc("DELETE /v1/jobs/{id}", a.cancelJob)
	a.mux.HandleFunc("GET /v1/jobs/{id}/result", a.getResult)
	a.mux.HandleFunc("GET /v1/jobs/{id}/events", a.streamEvents)
	a.mux.HandleFunc("GET /v1/jobs/{id}/request", a.getRequest)
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.HandleFunc("GET /metrics", a.metrics)
	a.mux.HandleFunc("GET /openapi.json", a.openAPI)
	if cfg.Operations != nil {
		a.addOperationRoutes(cfg.Operations)
	}
	a.addStatsRoutes(cfg.Operations, cfg.ModelReports)
	if cfg.Usage != nil {
		a.addUsageRoute(cfg.Usage)
	}

	var h http.Handler = a.mux
	for i := len(cfg.Middleware) - 1; i >= 0; i-- {
		h = cfg.Middleware[i](h)
	}
	h = a.resolve(h)
	h = Recover(a.log)(h)
	h = AccessLog(a.log, cfg.Observe)(h)
	h = RequestID(h)
	return h, nil
}

// newAPI applies cfg's defaults and returns the API's state, with no routes yet.
func newAPI(cfg APIConfig) *api {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	cfg.MaxWait = cmp.Or(max(cfg.MaxWait, 0), DefaultMaxWait)
	cfg.Heartbeat = cmp.Or(max(cfg.Heartbeat, 0), DefaultHeartbeat)
	cfg.ReadyTimeout = cmp.Or(max(cfg.ReadyTimeout, 0), DefaultReadyTimeout)
	cfg.MaxInflightBodyBytes = cmp.Or(max(cfg.MaxInflightBodyBytes, 0), DefaultMaxInflightBodyBytes)
	// One body of the largest size fits: it grows to MaxBodyBytes+1 bytes, from firstBodyBuffer.
	cfg.MaxInflightBodyBytes = max(cfg.MaxInflightBodyBytes, cfg.MaxBodyBytes+1, firstBodyBuffer)
	cfg.InflightBodyWait = cmp.Or(max(cfg.InflightBodyWait, 0), DefaultInflightBodyWait)
	cfg.WriteTimeout = max(cfg.WriteTimeout, 0)
	return &api{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), bodies: semaphore.NewWeighted(cfg.MaxInflightBodyBytes)}
}

// resolve finds the route before cfg.Middleware runs, so that the access log and metrics name
// the route even of requests the middleware refuses, and answers unknown routes and wrong
// methods with problems instead of the mux's plain-text errors.
func (a *api) resolve(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := a.mux.Handler(r)
		if pattern == "" {
			a.unmatched(w, r, h)
			return
		}
		setRoute(w, pattern)
		next.ServeHTTP(w, r)
	})
}

// unmatched runs the mux's own answer for a request no route matched into a scratch writer, to
// learn whether it is a 404 or a 405 (and the Allow header), and answers with a problem.
func (a *api) unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	var probe probeWriter
	h.ServeHTTP(&probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeProblem(w, r, newProblem(http.StatusMethodNotAllowed, SlugMethodNotAllowed,
			r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+allow))
	case http.StatusNotFound, 0:
		writeProblem(w, r, newProblem(http.StatusNotFound, SlugNotFound,
			"no route "+r.Method+" "+r.URL.Path+"; see GET /openapi.json for the API"))
	default:
		// A redirect to the cleaned path, or another answer of the mux: pass it on as is.
		for k, v := range probe.header {
			w.Header()[k] = v
		}
		w.WriteHeader(probe.status)
		_, _ = w.Write(probe.body)
	}
}

// probeWriter captures an answer in memory.
type probeWriter struct {
	header http.Header
	status int
	body   []byte
}

func (p *probeWriter) Header() http.Header {
	if p.header == nil {
		p.header = http.Header{}
	}
	return p.header
}

func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	p.body = append(p.body, b...)
	return len(b), nil
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ReadyTimeout)
	defer cancel()
	if err := a.cfg.Jobs.Ready(ctx); err != nil {
		a.log.Warn().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Msg("not ready")
		writeProblem(w, r, newProblem(http.StatusServiceUnavailable, SlugUnavailable,
			"not ready: "+err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"status":"ready"}`))
}

func (a *api) metrics(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Metrics == nil {
		writeProblem(w, r, newProblem(http.StatusNotFound, SlugNotFound, "metrics are not enabled in this process"))
		return
	}
	a.cfg.Metrics.ServeHTTP(w, r)
}

func (a *api) openAPI(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, schemas.OpenAPI())
}
