// Package fmsim is a foundation-model server for tests and chaos drills. One http.Handler
// speaks Amazon Bedrock runtime Converse (POST /model/{modelId}/converse), InvokeModel with the
// Anthropic messages body (POST /model/{modelId}/invoke) and OpenAI chat completions
// (POST /v1/chat/completions), answers deterministically, streams the answer in chunks
// (ConverseStream's event stream at POST /model/{modelId}/converse-stream, server-sent events
// for chat with "stream": true, either of which it can break after N chunks), and injects the faults real model
// services show: latency from a distribution, throttling with Retry-After, 5xx,
// ModelNotReadyException, ModelTimeoutException, hangs, scheduled or toggled outages and a
// context-window limit per model, and a requests-per-minute quota answered with 429 past it.
// GET /stats counts calls by API, model and outcome, the peak of calls in flight and the calls
// arriving each second; POST /admin/faults changes the faults while it runs. The Bedrock batch
// inference control plane (CreateModelInvocationJob, GetModelInvocationJob,
// ListModelInvocationJobs, StopModelInvocationJob) runs jobs over JSONL in S3 (see Invocations).
package fmsim

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The APIs a call can arrive on, as /stats names them.
const (
	APIConverse = "converse"
	APIInvoke   = "invoke"
	APIChat     = "chat"
)

// Outcomes of a call, as /stats names them.
const (
	OutcomeOK              = "ok"
	OutcomeThrottled       = "throttled"
	OutcomeError           = "error"
	OutcomeNotReady        = "not_ready"
	OutcomeModelTimeout    = "model_timeout"
	OutcomeHang            = "hang"
	OutcomeOutage          = "outage"
	OutcomeContextOverflow = "context_overflow"
	OutcomeBadRequest      = "bad_request"
	OutcomeDenied          = "denied"
	OutcomeNotFound        = "not_found"
	OutcomeCancelled       = "cancelled"
)

// Latency distributions.
const (
	DistFixed     = "fixed"
	DistUniform   = "uniform"
	DistNormal    = "normal"
	DistLognormal = "lognormal"
)

// DefaultRetryAfter is the wait a throttled answer asks for when Faults.RetryAfter is 0.
const DefaultRetryAfter = time.Second

// z99 is the standard normal's 99th percentile.
const z99 = 2.3263478740408408

// Config shapes a Server. The zero value answers every call at once, for any model.
type Config struct {
	// Faults apply to every model without an entry in Models.
	Faults Faults
	// Models replaces Faults for the model ids it names (a Bedrock model id, inference
	// profile or ARN as it appears in the path, or an OpenAI request's "model"). Default none.
	Models map[string]Faults
	// KnownModels, when not empty, is the set of model ids that exist: calls to any other id
	// get ResourceNotFoundException / 404. Default empty: every id exists.
	KnownModels []string
	// APIKey, when set, is the key chat completions must send as "Authorization: Bearer KEY";
	// others get 401. Default empty: no key checked.
	APIKey string
	// Seed selects the sequence of faults and latencies: two servers with the same Seed and
	// Faults decide the same calls (by arrival order) the same way. Default 0.
	Seed int64
	// Classify, when set, answers classification prompts with a topic number (see Classify).
	// Default nil: every call gets the echo answer.
	Classify *Classify
	// Invocations shapes the Bedrock batch inference control plane (model invocation jobs
	// over the S3 it names). Default: no S3, so every job fails.
	Invocations Invocations
}

// Faults are the failures and delays injected into one model's calls. Rates are shares of
// calls from 0 to 1, drawn once per call in the order throttle, error, not ready, model
// timeout, hang (their sum is capped at 1). The zero value injects nothing.
type Faults struct {
	// Latency of successful answers. Default none.
	Latency Latency
	// ThrottleRate: share of calls answered 429 ThrottlingException (rate_limit_exceeded for
	// chat) with Retry-After, x-amz-retry-after and retry-after-ms headers.
	ThrottleRate float64
	// ErrorRate: share answered 500 InternalServerException.
	ErrorRate float64
	// NotReadyRate: share answered 429 ModelNotReadyException (503 model_not_ready for chat).
	NotReadyRate float64
	// TimeoutRate: share answered 408 ModelTimeoutException (504 timeout for chat).
	TimeoutRate float64
	// HangRate: share never answered until the client gives up or the server closes.
	HangRate float64
	// RetryAfter is the wait a throttled answer asks for. Default DefaultRetryAfter.
	RetryAfter time.Duration
	// Down answers every call 503 ServiceUnavailableException until set back to false.
	Down bool
	// Outages are windows, measured from the Server's start, during which calls get 503.
	Outages []Outage
	// ContextWindow is the model's limit in tokens (estimated as 4 per 3 words of input plus
	// max tokens asked for); longer calls get a 400 context-length error. Default 0: no limit.
	ContextWindow int
	// Deny answers every call 403 AccessDeniedException.
	Deny bool
	// DropItemRate is the share of a batched prompt's items (messages.BatchPrompt) left out of
	// the answer, chosen by a hash of the seed and the item's input, so the same items drop
	// every time. An item sent alone is always answered.
	DropItemRate float64
	// GarbleItemRate is the share of a batched prompt's items answered with a JSON object
	// instead of a string, chosen as DropItemRate's (after it).
	GarbleItemRate float64
	// DropItemsMatching, when set, leaves out of a batched answer every item whose input
	// contains it.
	DropItemsMatching string
	// GarbleItemsMatching, when set, garbles every item of a batched answer whose input
	// contains it.
	GarbleItemsMatching string
	// RPM is a request quota, as providers set one: past RPM requests admitted within any
	// sliding RPMWindow, calls are answered as throttled, with a Retry-After saying when the
	// oldest admitted request leaves the window; refused calls do not count. It is checked
	// before the random faults. Default 0: no quota.
	RPM int
	// RPMWindow is the sliding window RPM counts over. Default DefaultRPMWindow (a minute).
	RPMWindow time.Duration
	// ChunkInterval is the wait between two chunks of a streamed answer (the first comes after
	// Latency). Default 0: chunks follow each other at once.
	ChunkInterval time.Duration
	// DropStreamAfter, when above 0, breaks every streamed answer after that many text chunks:
	// the connection is cut without the stream's end, as a network fault or a crashed model
	// server would. A call resumed with the text so far as the assistant's prefix gets the
	// next chunks, and is dropped again after as many more. Default 0: streams end normally.
	DropStreamAfter int
}

// Latency is a distribution of answer delays given by its median and 99th percentile.
type Latency struct {
	// Dist is fixed (default: always P50), uniform (over the range with this median and 99th
	// percentile), normal or lognormal.
	Dist string
	P50  time.Duration
	P99  time.Duration
}

// Outage is a window of time after the Server's start, [From, To).
type Outage struct {
	From time.Duration
	To   time.Duration
}

// Server is the simulator. It is an http.Handler safe for concurrent use; faults may be
// changed while it serves.
type Server struct {
	mux   *http.ServeMux
	seed  uint64
	start time.Time
	calls atomic.Uint64
	known map[string]bool
	key   string
	clf   *Classify
	done  chan struct{}
	once  sync.Once

	mu     sync.RWMutex
	faults Faults
	models map[string]Faults

	statsMu sync.Mutex
	// active counts the calls waiting out their latency now.
	active  atomic.Int64
	stats   Stats
	traffic traffic

	quotaMu sync.Mutex
	quotas  map[string]*quota

	inv *invocationStore
}

// New returns a Server behaving as cfg says; its outage clock starts now.
func New(cfg Config) *Server {
	s := &Server{
		mux:    http.NewServeMux(),
		seed:   uint64(cfg.Seed),
		start:  time.Now(),
		key:    cfg.APIKey,
		clf:    cfg.Classify,
		done:   make(chan struct{}),
		faults: cfg.Faults,
		models: map[string]Faults{},
		quotas: map[string]*quota{},
	}
	s.traffic.since = s.start
	for id, f := range cfg.Models {
		s.models[id] = f
	}
	if len(cfg.KnownModels) > 0 {
		s.known = map[string]bool{}
		for _, id := range cfg.KnownModels {
			s.known[id] = true
		}
	}
	s.stats = newStats()
	s.mux.HandleFunc("POST /model/{modelId}/converse", s.converse)
	s.mux.HandleFunc("POST /model/{modelId}/invoke", s.invoke)
	s.mux.HandleFunc("POST /model/{modelId}/converse-stream", s.converseStream)
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("POST /chat/completions", s.chat)
	s.mux.HandleFunc("GET /stats", s.getStats)
	s.mux.HandleFunc("DELETE /stats", s.deleteStats)
	s.mux.HandleFunc("GET /admin/faults", s.getFaults)
	s.mux.HandleFunc("POST /admin/faults", s.postFaults)
	s.mux.HandleFunc("DELETE /admin/faults", s.deleteFaults)
	s.routeInvocations()
	s.inv.cfg = cfg.Invocations
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close releases every hanging or waiting call with a 503 ServiceUnavailable answer and makes
// later hangs end the same way at once, so that an http.Server in front can shut down. It is
// idempotent; the Server keeps serving otherwise.
func (s *Server) Close() { s.once.Do(func() { close(s.done) }) }

// SetFaults replaces the faults of model id, or the default faults when id is "".
func (s *Server) SetFaults(id string, f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		s.faults = f
		return
	}
	s.models[id] = f
}

// ClearFaults removes model id's own faults, so that the default faults apply to it again.
func (s *Server) ClearFaults(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.models, id)
}

func (s *Server) faultsFor(id string) Faults {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if f, ok := s.models[id]; ok {
		return f
	}
	return s.faults
}

// Stats counts the calls a Server has answered.
type Stats struct {
	Calls          int64                       `json:"calls"`
	ByAPI          map[string]int64            `json:"by_api"`
	ByModel        map[string]int64            `json:"by_model"`
	ByOutcome      map[string]int64            `json:"by_outcome"`
	ByModelOutcome map[string]map[string]int64 `json:"by_model_outcome"`
	// BatchCalls counts calls answered that held a batched prompt; BatchItems their items;
	// DroppedItems and GarbledItems the items left out or garbled on purpose.
	BatchCalls   int64 `json:"batch_calls"`
	BatchItems   int64 `json:"batch_items"`
	DroppedItems int64 `json:"dropped_items"`
	GarbledItems int64 `json:"garbled_items"`
	// Streams counts the streamed answers begun (ConverseStream, chat with stream: true),
	// ResumedStreams those that continued an assistant prefix, DroppedStreams those broken
	// on purpose (Faults.DropStreamAfter).
	Streams        int64 `json:"streams"`
	ResumedStreams int64 `json:"resumed_streams"`
	DroppedStreams int64 `json:"dropped_streams"`
	// Active is the number of calls being answered now (waiting out their latency); it is not
	// among Calls, which counts calls when they end.
	Active int64 `json:"active"`
	// LastTraceparent is the traceparent header of the latest model call that had one.
	LastTraceparent string `json:"last_traceparent,omitempty"`
	// LastUserAgent is the User-Agent of the latest model call.
	LastUserAgent string `json:"last_user_agent,omitempty"`
	// MaxInFlight is the most model calls (of any model and outcome) the server was serving
	// at once since it started or its stats were reset.
	MaxInFlight int64 `json:"max_in_flight"`
	// PerSecond counts the model calls that arrived in each second since the server started
	// or its stats were reset: PerSecond[i] arrived in [i s, i+1 s).
	PerSecond []int64 `json:"per_second"`
}

func newStats() Stats {
	return Stats{ByAPI: map[string]int64{}, ByModel: map[string]int64{}, ByOutcome: map[string]int64{}, ByModelOutcome: map[string]map[string]int64{}, PerSecond: []int64{}}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := newStats()
	out.Calls, out.LastTraceparent, out.LastUserAgent = s.stats.Calls, s.stats.LastTraceparent, s.stats.LastUserAgent
	out.Active = s.active.Load()
	out.BatchCalls, out.BatchItems, out.DroppedItems, out.GarbledItems = s.stats.BatchCalls, s.stats.BatchItems, s.stats.DroppedItems, s.stats.GarbledItems
	out.Streams, out.ResumedStreams, out.DroppedStreams = s.stats.Streams, s.stats.ResumedStreams, s.stats.DroppedStreams
	out.MaxInFlight, out.PerSecond = s.traffic.read()
	for k, v := range s.stats.ByAPI {
		out.ByAPI[k] = v
	}
	for k, v := range s.stats.ByModel {
		out.ByModel[k] = v
	}
	for k, v := range s.stats.ByOutcome {
		out.ByOutcome[k] = v
	}
	for m, o := range s.stats.ByModelOutcome {
		c := make(map[string]int64, len(o))
		for k, v := range o {
			c[k] = v
		}
		out.ByModelOutcome[m] = c
	}
	return out
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats = newStats()
	s.traffic.reset(time.Now())
}

func (s *Server) record(api, model, outcome string, r *http.Request) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats.Calls++
	s.stats.ByAPI[api]++
	s.stats.ByModel[model]++
	s.stats.ByOutcome[outcome]++
	mo := s.stats.ByModelOutcome[model]
	if mo == nil {
		mo = map[string]int64{}
		s.stats.ByModelOutcome[model] = mo
	}
	mo[outcome]++
	if tp := r.Header.Get("traceparent"); tp != "" {
		s.stats.LastTraceparent = tp
	}
	s.stats.LastUserAgent = r.Header.Get("User-Agent")
}

// decision is what a call gets before its answer is written.
type decision struct {
	outcome    string
	delay      time.Duration
	retryAfter time.Duration
	window     int
}

// decide draws the fate of one call to model id with the given estimated input tokens.
func (s *Server) decide(id string, tokens int) decision {
	if s.known != nil && !s.known[id] {
		return decision{outcome: OutcomeNotFound}
	}
	f := s.faultsFor(id)
	switch {
	case f.Deny:
		return decision{outcome: OutcomeDenied}
	case f.Down || s.inOutage(f.Outages):
		return decision{outcome: OutcomeOutage}
	case f.ContextWindow > 0 && tokens > f.ContextWindow:
		return decision{outcome: OutcomeContextOverflow, window: f.ContextWindow}
	}
	if f.RPM > 0 {
		if ok, wait := s.quotaFor(id).admit(time.Now(), f.RPM, cmp.Or(f.RPMWindow, DefaultRPMWindow)); !ok {
			return decision{outcome: OutcomeThrottled, retryAfter: wait}
		}
	}
	n := s.calls.Add(1)
	u := unit(mix(s.seed, n, 1))
	d := decision{outcome: OutcomeOK, retryAfter: cmp.Or(f.RetryAfter, DefaultRetryAfter)}
	for _, c := range []struct {
		rate    float64
		outcome string
	}{
		{f.ThrottleRate, OutcomeThrottled},
		{f.ErrorRate, OutcomeError},
		{f.NotReadyRate, OutcomeNotReady},
		{f.TimeoutRate, OutcomeModelTimeout},
		{f.HangRate, OutcomeHang},
	} {
		if u < c.rate {
			d.outcome = c.outcome
			return d
		}
		u -= max(c.rate, 0)
	}
	d.delay = f.Latency.draw(s.seed, n)
	return d
}

func (s *Server) inOutage(outages []Outage) bool {
	if len(outages) == 0 {
		return false
	}
	since := time.Since(s.start)
	for _, o := range outages {
		if since >= o.From && since < o.To {
			return true
		}
	}
	return false
}

// draw returns the latency of call n.
func (l Latency) draw(seed, n uint64) time.Duration {
	p50, p99 := max(l.P50, 0), max(l.P99, l.P50, 0)
	var d float64
	switch l.Dist {
	case DistUniform:
		width := float64(p99-p50) / 0.49
		lo := float64(p50) - width/2
		d = lo + width*unit(mix(seed, n, 2))
	case DistNormal:
		sigma := float64(p99-p50) / z99
		d = float64(p50) + sigma*gauss(seed, n)
	case DistLognormal:
		if p50 <= 0 {
			return 0
		}
		sigma := math.Log(float64(p99)/float64(p50)) / z99
		d = float64(p50) * math.Exp(sigma*gauss(seed, n))
	default:
		d = float64(p50)
	}
	return time.Duration(max(d, 0))
}

// gauss is a standard normal draw for call n (Box-Muller).
func gauss(seed, n uint64) float64 {
	u1 := 1 - unit(mix(seed, n, 2)) // (0, 1]
	u2 := unit(mix(seed, n, 3))
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// wait blocks for d, returning false when the client went away or the server closed first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// hang blocks until the client gives up or the server closes; it reports whether the
// server's Close ended it.
func (s *Server) hang(ctx context.Context) (closed bool) {
	select {
	case <-ctx.Done():
		return false
	case <-s.done:
		return true
	}
}

// mix derives a well-spread pseudo-random value from a seed, a call number and a stream id
// (SplitMix64 finalizer), so that concurrent calls need no lock.
func mix(seed, n, stream uint64) uint64 {
	z := seed + n*0x9E3779B97F4A7C15 + stream*0xD1B54A32D192ED03
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// unit maps x to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// faultsJSON is Faults on the wire of /admin/faults, durations as strings such as "250ms".
type faultsJSON struct {
	Latency       *latencyJSON `json:"latency,omitempty"`
	ThrottleRate  float64      `json:"throttle_rate,omitempty"`
	ErrorRate     float64      `json:"error_rate,omitempty"`
	NotReadyRate  float64      `json:"not_ready_rate,omitempty"`
	TimeoutRate   float64      `json:"timeout_rate,omitempty"`
	HangRate      float64      `json:"hang_rate,omitempty"`
	RetryAfter    duration     `json:"retry_after,omitempty"`
	Down          bool         `json:"down,omitempty"`
	Outages       []outageJSON `json:"outages,omitempty"`
	ContextWindow int          `json:"context_window,omitempty"`
	Deny          bool         `json:"deny,omitempty"`

	DropItemRate        float64  `json:"drop_item_rate,omitempty"`
	GarbleItemRate      float64  `json:"garble_item_rate,omitempty"`
	DropItemsMatching   string   `json:"drop_items_matching,omitempty"`
	GarbleItemsMatching string   `json:"garble_items_matching,omitempty"`
	RPM                 int      `json:"rpm,omitempty"`
	RPMWindow           duration `json:"rpm_window,omitempty"`
	ChunkInterval       duration `json:"chunk_interval,omitempty"`
	DropStreamAfter     int      `json:"drop_stream_after,omitempty"`
}

type latencyJSON struct {
	Dist string   `json:"dist,omitempty"`
	P50  duration `json:"p50,omitempty"`
	P99  duration `json:"p99,omitempty"`
}

type outageJSON struct {
	From duration `json:"from"`
	To   duration `json:"to"`
}

// MarshalJSON writes f as /admin/faults takes it.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{
		ThrottleRate: f.ThrottleRate, ErrorRate: f.ErrorRate, NotReadyRate: f.NotReadyRate,
		TimeoutRate: f.TimeoutRate, HangRate: f.HangRate, RetryAfter: duration(f.RetryAfter),
		Down: f.Down, ContextWindow: f.ContextWindow, Deny: f.Deny, RPM: f.RPM, RPMWindow: duration(f.RPMWindow),
		DropItemRate: f.DropItemRate, GarbleItemRate: f.GarbleItemRate,
		DropItemsMatching: f.DropItemsMatching, GarbleItemsMatching: f.GarbleItemsMatching,
		ChunkInterval: duration(f.ChunkInterval), DropStreamAfter: f.DropStreamAfter,
	}
	if f.Latency != (Latency{}) {
		j.Latency = &latencyJSON{Dist: f.Latency.Dist, P50: duration(f.Latency.P50), P99: duration(f.Latency.P99)}
	}
	for _, o := range f.Outages {
		j.Outages = append(j.Outages, outageJSON{From: duration(o.From), To: duration(o.To)})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads f from the /admin/faults body: snake_case keys, durations as Go
// duration strings ("250ms") or numbers of milliseconds. Missing keys are zero.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	out := Faults{
		ThrottleRate: j.ThrottleRate, ErrorRate: j.ErrorRate, NotReadyRate: j.NotReadyRate,
		TimeoutRate: j.TimeoutRate, HangRate: j.HangRate, RetryAfter: time.Duration(j.RetryAfter),
		Down: j.Down, ContextWindow: j.ContextWindow, Deny: j.Deny, RPM: j.RPM, RPMWindow: time.Duration(j.RPMWindow),
		DropItemRate: j.DropItemRate, GarbleItemRate: j.GarbleItemRate,
		DropItemsMatching: j.DropItemsMatching, GarbleItemsMatching: j.GarbleItemsMatching,
		ChunkInterval: time.Duration(j.ChunkInterval), DropStreamAfter: j.DropStreamAfter,
	}
	if j.Latency != nil {
		out.Latency = Latency{Dist: j.Latency.Dist, P50: time.Duration(j.Latency.P50), P99: time.Duration(j.Latency.P99)}
	}
	for _, o := range j.Outages {
		out.Outages = append(out.Outages, Outage{From: time.Duration(o.From), To: time.Duration(o.To)})
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*f = out
	return nil
}

// Validate reports every setting out of range.
func (f Faults) Validate() error {
	var errs []error
	for name, r := range map[string]float64{"throttle_rate": f.ThrottleRate, "error_rate": f.ErrorRate, "not_ready_rate": f.NotReadyRate, "timeout_rate": f.TimeoutRate, "hang_rate": f.HangRate, "drop_item_rate": f.DropItemRate, "garble_item_rate": f.GarbleItemRate} {
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s %v: must be between 0 and 1", name, r))
		}
	}
	switch f.Latency.Dist {
	case "", DistFixed, DistUniform, DistNormal, DistLognormal:
	default:
		errs = append(errs, fmt.Errorf("latency.dist %q: use fixed, uniform, normal or lognormal", f.Latency.Dist))
	}
	if f.Latency.P99 != 0 && f.Latency.P99 < f.Latency.P50 {
		errs = append(errs, fmt.Errorf("latency.p99 %s is below latency.p50 %s", f.Latency.P99, f.Latency.P50))
	}
	if f.RPM < 0 {
		errs = append(errs, fmt.Errorf("rpm %d: must be 0 (no quota) or more", f.RPM))
	}
	if f.RPMWindow < 0 {
		errs = append(errs, fmt.Errorf("rpm_window %s: must be positive (or 0 for a minute)", f.RPMWindow))
	}
	if f.ChunkInterval < 0 {
		errs = append(errs, fmt.Errorf("chunk_interval %s: must be 0 or more", f.ChunkInterval))
	}
	if f.DropStreamAfter < 0 {
		errs = append(errs, fmt.Errorf("drop_stream_after %d: must be 0 (never drop) or more", f.DropStreamAfter))
	}
	for i, o := range f.Outages {
		if o.To <= o.From {
			errs = append(errs, fmt.Errorf("outages[%d]: to %s must be after from %s", i, o.To, o.From))
		}
	}
	return errors.Join(errs...)
}

type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("duration %q: use a Go duration such as 250ms: %w", x, err)
		}
		*d = duration(p)
	case float64:
		*d = duration(x * float64(time.Millisecond))
	default:
		return fmt.Errorf("duration %s: use a string such as \"250ms\" or a number of milliseconds", b)
	}
	return nil
}

func (s *Server) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Server) deleteStats(w http.ResponseWriter, _ *http.Request) {
	s.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getFaults(w http.ResponseWriter, _ *http.Request) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"default": s.faults, "models": s.models})
}

// postFaults replaces the default faults, or those of ?model=ID, with the body.
func (s *Server) postFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid faults: " + err.Error()})
		return
	}
	s.SetFaults(r.URL.Query().Get("model"), f)
	w.WriteHeader(http.StatusNoContent)
}

// deleteFaults clears ?model=ID's own faults, or resets the default faults when no model is
// named.
func (s *Server) deleteFaults(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("model"); id != "" {
		s.ClearFaults(id)
	} else {
		s.SetFaults("", Faults{})
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
