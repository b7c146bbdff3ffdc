package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/fmsim"
)

// runFmsimCommand is `infleet fmsim`: the model server until SIGINT or SIGTERM.
func runFmsimCommand(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runFmsim(ctx, args, stderr, nil)
}

// fmsimFaultsFile is the shape of --faults-file, the same as GET /admin/faults answers.
type fmsimFaultsFile struct {
	Default *fmsim.Faults           `json:"default"`
	Models  map[string]fmsim.Faults `json:"models"`
}

// runFmsim serves fmsim until ctx ends. listening, when not nil, is told the bound address.
func runFmsim(ctx context.Context, args []string, stderr io.Writer, listening func(addr string)) int {
	fs := newFlagSet("fmsim", "[flags]",
		"Serves a simulated foundation model on one port, over HTTP/1.1 and unencrypted HTTP/2\n"+
			"(prior knowledge, as the AWS SDK for JavaScript sends): Amazon Bedrock runtime Converse\n"+
			"(POST /model/{modelId}/converse), InvokeModel with the Anthropic messages body\n"+
			"(POST /model/{modelId}/invoke) and OpenAI chat completions (POST /v1/chat/completions),\n"+
			"with deterministic answers (per item for request batching's numbered prompts, some of which\n"+
			"--drop-item-rate and --garble-item-rate spoil on purpose; or, with --classify, topic numbers for classification\n"+
			"prompts such as the guardrails' topic_classifier sends) and injected latency,\n"+
			"throttling, 5xx, ModelNotReady, ModelTimeout, hangs, outages and a requests-per-minute quota\n"+
			"(--rpm). Answers stream in word chunks on ConverseStream (POST /model/{modelId}/converse-stream,\n"+
			"AWS event stream) and on chat completions with \"stream\": true (server-sent events), paced by\n"+
			"--chunk-interval and broken on purpose by --drop-stream-after.\n"+
			"GET /stats counts calls by API, model and outcome, the peak of calls in flight\n"+
			"(max_in_flight) and the calls arriving each second (per_second);\n"+
			"POST /admin/faults[?model=ID] replaces the faults at run time, e.g.\n"+
			"  curl -X POST localhost:9000/admin/faults -d '{\"throttle_rate\":0.3,\"retry_after\":\"1s\"}'\n"+
			"Bedrock batch inference's control plane (POST /model-invocation-job, GET\n"+
			"/model-invocation-job/{id}, GET /model-invocation-jobs, POST /model-invocation-job/{id}/stop)\n"+
			"reads each job's JSONL input from, and writes its output to, the S3 at --s3-endpoint.\n"+
			"Point a bedrock model's endpoint (or INFLEET_AWS_ENDPOINT) at http://HOST:PORT, with any\n"+
			"AWS credentials, or an openai model's base_url at http://HOST:PORT/v1.", stderr)
	addr := fs.String("addr", ":9000", "listen address")
	latency := fs.Duration("latency", 0, "median answer latency (p50)")
	dist := fs.String("latency-dist", fmsim.DistFixed, "latency distribution: fixed, uniform, normal or lognormal")
	p99 := fs.Duration("latency-p99", 0, "99th percentile latency for uniform, normal and lognormal (default: --latency)")
	throttle := fs.Float64("throttle-rate", 0, "share of calls throttled (429 ThrottlingException with Retry-After), 0 to 1")
	errRate := fs.Float64("error-rate", 0, "share of calls answered 500 InternalServerException, 0 to 1")
	notReady := fs.Float64("not-ready-rate", 0, "share of calls answered ModelNotReadyException, 0 to 1")
	timeout := fs.Float64("timeout-rate", 0, "share of calls answered ModelTimeoutException, 0 to 1")
	hang := fs.Float64("hang-rate", 0, "share of calls never answered until the client gives up, 0 to 1")
	retryAfter := fs.Duration("retry-after", fmsim.DefaultRetryAfter, "wait a throttled answer asks for")
	rpm := fs.Int("rpm", 0, "request quota per model: past N requests in any sliding minute, answer 429 with a Retry-After saying when the oldest leaves it (0: no quota)")
	window := fs.Int("context-window", 0, "context window in tokens; longer calls get a context-length error (0: no limit)")
	outages := fs.String("outages", "", "outage windows after start, FROM-TO[,FROM-TO...], e.g. 30s-1m,5m-6m (503 while inside)")
	down := fs.Bool("down", false, "start in an outage (503 until POST /admin/faults sets down false)")
	models := fs.String("models", "", "comma-separated model ids that exist; others get 404 (default: every id exists)")
	apiKey := fs.String("api-key", "", "API key chat completions must send as a Bearer token (default: none checked)")
	seed := fs.Int64("seed", 0, "seed of the fault and latency sequence")
	dropItems := fs.Float64("drop-item-rate", 0, "share of a batched prompt's items left out of the answer (the same items every time; an item sent alone is always answered), 0 to 1")
	garbleItems := fs.Float64("garble-item-rate", 0, "share of a batched prompt's items answered with a JSON object instead of a string, 0 to 1")
	dropMatching := fs.String("drop-items-matching", "", "leave out of batched answers every item whose input contains this text")
	garbleMatching := fs.String("garble-items-matching", "", "garble in batched answers every item whose input contains this text")
	classify := fs.Bool("classify", false, "answer classification prompts (\"Answer with only the number of the topic ...\") with the number of the topic whose words the text holds most of")
	classifyRules := fs.String("classify-rules", "", "JSON file of further cue words per topic name for --classify, {\"rules\":{\"NAME\":[\"cue\",...]},\"min_score\":1}; implies --classify")
	chunkInterval := fs.Duration("chunk-interval", 0, "wait between two chunks of a streamed answer (ConverseStream, chat with stream: true)")
	dropStream := fs.Int("drop-stream-after", 0, "break every streamed answer after N text chunks, cutting the connection (a call resumed with the text so far as the assistant's prefix gets the next N); 0: never")
	batch := fmsimBatchFlags(fs)
	faultsFile := fs.String("faults-file", "", "JSON file of faults per model, shaped like GET /admin/faults ({\"default\":{...},\"models\":{\"ID\":{...}}}); wins over the fault flags")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}

	f := fmsim.Faults{
		Latency:       fmsim.Latency{Dist: *dist, P50: *latency, P99: max(*p99, *latency)},
		ThrottleRate:  *throttle,
		ErrorRate:     *errRate,
		NotReadyRate:  *notReady,
		TimeoutRate:   *timeout,
		HangRate:      *hang,
		RetryAfter:    *retryAfter,
		ContextWindow: *window,
		Down:          *down,

		DropItemRate:        *dropItems,
		GarbleItemRate:      *garbleItems,
		DropItemsMatching:   *dropMatching,
		GarbleItemsMatching: *garbleMatching,
		RPM:                 *rpm,
		ChunkInterval:       *chunkInterval,
		DropStreamAfter:     *dropStream,
	}
	if *outages != "" {
		o, err := parseOutages(*outages)
		if err != nil {
			return usageError(stderr, "fmsim", "--outages: %v", err)
		}
		f.Outages = o
	}
	if err := f.Validate(); err != nil {
		return usageError(stderr, "fmsim", "%v", err)
	}
	cfg := fmsim.Config{Faults: f, APIKey: *apiKey, Seed: *seed}
	if *models != "" {
		cfg.KnownModels = strings.Split(*models, ",")
	}
	if *classify || *classifyRules != "" {
		cfg.Classify = &fmsim.Classify{}
	}
	if *classifyRules != "" {
		data, err := os.ReadFile(*classifyRules)
		if err != nil {
			return usageError(stderr, "fmsim", "--classify-rules: %v", err)
		}
		if err := json.Unmarshal(data, cfg.Classify); err != nil {
			return usageError(stderr, "fmsim", "--classify-rules %s: %v", *classifyRules, err)
		}
	}
	cfg.Invocations = batch.invocations()
	if *faultsFile != "" {
		data, err := os.ReadFile(*faultsFile)
		if err != nil {
			return usageError(stderr, "fmsim", "--faults-file: %v", err)
		}
		var ff fmsimFaultsFile
		if err := json.Unmarshal(data, &ff); err != nil {
			return usageError(stderr, "fmsim", "--faults-file %s: %v", *faultsFile, err)
		}
		if ff.Default != nil {
			cfg.Faults = *ff.Default
		}
		cfg.Models = ff.Models
	}

	log := zerolog.New(stderr).With().Timestamp().Str("component", "fmsim").Logger()
	sim := fmsim.New(cfg)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return usageError(stderr, "fmsim", "listen on %s (choose another --addr): %v", *addr, err)
	}
	srv := sim.HTTPServer() // HTTP/1.1 and unencrypted HTTP/2 on the one port
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Float64("throttle_rate", f.ThrottleRate).Float64("error_rate", f.ErrorRate).
		Float64("hang_rate", f.HangRate).Dur("latency_ms", f.Latency.P50).Msg("fmsim serving")
	if listening != nil {
		listening(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error().Err(err).Msg("fmsim stopped")
		return 1
	}
	sim.Close() // release hanging calls so that shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), shutdownBound)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error().Err(err).Msg("fmsim shutdown")
		return 1
	}
	st := sim.Stats()
	log.Info().Int64("calls", st.Calls).Interface("by_outcome", st.ByOutcome).Msg("fmsim stopped")
	return 0
}

// parseOutages reads FROM-TO[,FROM-TO...] windows of Go durations.
func parseOutages(s string) ([]fmsim.Outage, error) {
	var out []fmsim.Outage
	for _, w := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(w), "-")
		if !ok {
			return nil, fmt.Errorf("%q is not FROM-TO (e.g. 30s-1m)", w)
		}
		f, err := time.ParseDuration(from)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", w, err)
		}
		t, err := time.ParseDuration(to)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", w, err)
		}
		out = append(out, fmsim.Outage{From: f, To: t})
	}
	return out, nil
}
