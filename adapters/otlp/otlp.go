// Package otlp exports infleet's spans to an OpenTelemetry collector (or any OTLP receiver:
// Jaeger, Tempo, the AWS Distro for OpenTelemetry in front of X-Ray) over OTLP/HTTP or
// OTLP/gRPC. New builds the SDK tracer provider the wiring hands to the HTTP server, intake and
// workers; the pipeline itself speaks only the OpenTelemetry API.
package otlp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Protocols.
const (
	ProtocolHTTP = "http"
	ProtocolGRPC = "grpc"
)

// Standard OpenTelemetry environment variables New reads through Config.Getenv (the exporters
// read the rest of OTEL_EXPORTER_OTLP_*, such as the certificate and timeout, themselves).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvHeaders        = "OTEL_EXPORTER_OTLP_HEADERS"
	EnvTracesHeaders  = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// Config says where spans go. The zero value with no OTEL_EXPORTER_OTLP_* variable set
// exports nothing.
type Config struct {
	// Endpoint is a URL (http://collector:4318; an OTLP/HTTP URL without a path gets
	// /v1/traces) or host:port. Empty: the OTEL_EXPORTER_OTLP_* variables decide.
	Endpoint string
	// Protocol is ProtocolHTTP or ProtocolGRPC; empty follows OTEL_EXPORTER_OTLP_PROTOCOL
	// (grpc when it says grpc), else http.
	Protocol string
	// Headers go with every export, over those of OTEL_EXPORTER_OTLP_HEADERS.
	Headers map[string]string
	// Insecure sends to a host:port Endpoint in plain text.
	Insecure bool
	// SampleRatio is the share of traces starting here that are recorded (0 to 1); traces
	// whose caller sent a traceparent follow the caller's decision.
	SampleRatio float64
	// ServiceName and ServiceVersion describe the process (service.name, service.version);
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them. Default "infleet".
	ServiceName, ServiceVersion string
	// Getenv reads the environment; nil reads none.
	Getenv func(string) string
}

// Enabled reports whether cfg, with the environment, names an endpoint and OTEL_SDK_DISABLED
// is not true.
func (cfg Config) Enabled() bool {
	env := cfg.getenv
	if strings.EqualFold(strings.TrimSpace(env(EnvSDKDisabled)), "true") {
		return false
	}
	return cfg.Endpoint != "" || env(EnvEndpoint) != "" || env(EnvTracesEndpoint) != ""
}

func (cfg Config) getenv(k string) string {
	if cfg.Getenv == nil {
		return ""
	}
	return cfg.Getenv(k)
}

// New returns the tracer provider exporting spans as cfg says, or nil when cfg is not
// Enabled: the callers then make no spans at all. Shut the provider down at exit, after the
// last span ended: Shutdown sends the spans still batched. Connecting is lazy; an unreachable
// collector costs dropped spans and a log line from the SDK, never a failed job.
func New(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	exp, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", cmp.Or(cfg.ServiceName, "infleet")),
			attribute.String("service.version", cmp.Or(cfg.ServiceVersion, "dev"))),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: describe the process for traces (check OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	ratio := min(max(cfg.SampleRatio, 0), 1)
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp), // OTEL_BSP_* tune it
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	), nil
}

// newExporter makes the OTLP exporter of cfg's protocol.
func newExporter(ctx context.Context, cfg Config) (*otlptrace.Exporter, error) {
	headers := cfg.headers()
	endpoint, asIs := cfg.Endpoint, false
	if endpoint == "" {
		// Read here rather than by the exporter, so that Getenv is the one source.
		if endpoint = cfg.getenv(EnvTracesEndpoint); endpoint != "" {
			asIs = true // the signal's own URL is used as it is
		} else if endpoint = cfg.getenv(EnvEndpoint); endpoint != "" {
			asIs = false // a base URL: the signal's path is added
		}
	}
	isURL := strings.Contains(endpoint, "://")
	switch cfg.protocol() {
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		switch {
		case isURL:
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		case endpoint != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(endpoint))
			if cfg.Insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		if headers != nil {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry.otlp: start the OTLP/gRPC exporter to %s: %w", endpoint, err)
		}
		return exp, nil
	default:
		var opts []otlptracehttp.Option
		switch {
		case isURL:
			u, err := url.Parse(endpoint)
			if err != nil {
				return nil, fmt.Errorf("telemetry.otlp.endpoint %q is not a URL: %w", endpoint, err)
			}
			switch {
			case asIs:
			case cfg.Endpoint == "":
				u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
			case u.Path == "" || u.Path == "/":
				u.Path = "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		case endpoint != "":
			opts = append(opts, otlptracehttp.WithEndpoint(endpoint))
			if cfg.Insecure {
				opts = append(opts, otlptracehttp.WithInsecure())
			}
		}
		if headers != nil {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry.otlp: start the OTLP/HTTP exporter to %s: %w", endpoint, err)
		}
		return exp, nil
	}
}

// protocol is cfg's protocol, else the environment's, else http.
func (cfg Config) protocol() string {
	if cfg.Protocol != "" {
		return cfg.Protocol
	}
	if p := cmp.Or(cfg.getenv(EnvTracesProtocol), cfg.getenv(EnvProtocol)); p == ProtocolGRPC {
		return ProtocolGRPC
	}
	return ProtocolHTTP
}

// headers returns the environment's headers (read through Getenv) overlaid with cfg's, or nil
// when there are none.
func (cfg Config) headers() map[string]string {
	out := parseHeaders(cfg.getenv(EnvHeaders))
	for k, v := range parseHeaders(cfg.getenv(EnvTracesHeaders)) {
		out[k] = v
	}
	for k, v := range cfg.Headers {
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseHeaders reads the OTEL_EXPORTER_OTLP_HEADERS format: key=value pairs separated by
// commas, values URL-encoded. Malformed pairs are skipped, as the SDK skips them.
func parseHeaders(s string) map[string]string {
	out := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		if dv, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			out[k] = dv
		}
	}
	return out
}
