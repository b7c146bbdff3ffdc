package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/adapters/otlp"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// openTracing starts the OTLP span exporter when telemetry.otlp.endpoint or the
// OTEL_EXPORTER_OTLP_* variables name a collector; otherwise a.tracing stays nil and no span
// is made anywhere. The provider is shut down, sending what is batched, when the app closes.
func (a *app) openTracing(ctx context.Context) error {
	o := a.cfg.Telemetry.OTLP
	tp, err := otlp.New(ctx, otlp.Config{
		Endpoint:       o.Endpoint,
		Protocol:       o.Protocol,
		Headers:        o.Headers,
		Insecure:       o.Insecure,
		SampleRatio:    o.Ratio(),
		ServiceVersion: currentVersion().Version,
		Getenv:         a.src.getenv,
	})
	if err != nil || tp == nil {
		return err
	}
	a.tracing = tp
	a.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownBound)
		defer cancel()
		return tp.Shutdown(ctx)
	})
	a.log.Info().Str("endpoint", cmp.Or(o.Endpoint, "from OTEL_EXPORTER_OTLP_*")).Float64("sample_ratio", o.Ratio()).
		Msg("tracing: spans are exported over OTLP")
	return nil
}

// openEMF, with telemetry.emf, has the key metrics written to stdout as CloudWatch Embedded
// Metric Format lines every minute and once more when the app closes. The logs stay on
// stderr, so stdout holds nothing else.
func (a *app) openEMF() {
	if !a.cfg.Telemetry.EMF {
		return
	}
	e := telemetry.NewEMF(telemetry.EMFConfig{Out: os.Stdout})
	a.metrics.SendTo(e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	a.onClose(func() error {
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("telemetry.emf: write the metrics to stdout: %w", err)
		}
		return nil
	})
	a.log.Info().Msg("telemetry.emf: metrics are written to stdout in CloudWatch Embedded Metric Format")
}

// tracer is the tracer of the worker's spans, nil when tracing is off.
func (a *app) tracer() trace.Tracer {
	if a.tracing == nil {
		return nil
	}
	return a.tracing.Tracer(pipeline.TracerName)
}

// traceHTTP wraps the API so each request under /v1/ runs in a server span, the child of the
// caller's traceparent when it sent one; with tracing off it returns h as it is.
func (a *app) traceHTTP(h http.Handler) http.Handler {
	if a.tracing == nil {
		return h
	}
	return otelhttp.NewHandler(h, "infleet",
		otelhttp.WithTracerProvider(a.tracing),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithFilter(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/v1/") }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method + " " + apiRoute(r.URL.Path)
		}))
}

// apiRoute is the route of an API path, without the ids in it, for span names.
func apiRoute(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 3 && parts[0] == "v1" && parts[1] == "jobs" {
		parts[2] = "{id}"
	}
	return "/" + strings.Join(parts, "/")
}

// genAISystem names a provider as OpenTelemetry's GenAI conventions spell gen_ai.system.
func genAISystem(provider string) string {
	switch provider {
	case config.ProviderBedrock:
		return "aws.bedrock"
	case config.ProviderOpenAI:
		return "openai"
	case config.ProviderSim:
		return "infleet.sim"
	}
	return "_OTHER"
}
