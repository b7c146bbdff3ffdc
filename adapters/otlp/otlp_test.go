package otlp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/adapters/otlp"
	"github.com/infleet/infleet/internal/otlptest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestNoEndpointMakesNoProvider(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]otlp.Config{
		"nothing":  {},
		"disabled": {Endpoint: "http://collector:4318", Getenv: env(map[string]string{otlp.EnvSDKDisabled: "true"})},
	} {
		tp, err := otlp.New(context.Background(), cfg)
		if err != nil || tp != nil {
			t.Errorf("%s: New = %v, %v; want nil, nil", name, tp, err)
		}
	}
	if !(otlp.Config{Getenv: env(map[string]string{otlp.EnvTracesEndpoint: "http://c:4318/v1/traces"})}).Enabled() {
		t.Error("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone does not enable tracing")
	}
}

// export makes one parent and one child span through a provider built from cfg and shuts it
// down, which sends them.
func export(t *testing.T, cfg otlp.Config) (traceID string) {
	t.Helper()
	tp, err := otlp.New(context.Background(), cfg)
	if err != nil || tp == nil {
		t.Fatalf("New = %v, %v", tp, err)
	}
	tr := tp.Tracer("test")
	ctx, parent := tr.Start(context.Background(), "parent")
	_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient))
	child.End()
	parent.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	return parent.SpanContext().TraceID().String()
}

func TestExportsOverOTLPHTTP(t *testing.T) {
	t.Parallel()
	rcv, url := otlptest.StartHTTP(t)
	id := export(t, otlp.Config{
		Endpoint: url, SampleRatio: 1, ServiceVersion: "1.2.3",
		Headers: map[string]string{"x-tenant": "acme"},
		Getenv:  env(map[string]string{otlp.EnvHeaders: "authorization=Bearer%20t0ken,x-tenant=other"}),
	})
	spans := rcv.Wait(t, 5*time.Second, func(s []otlptest.Span) bool { return len(s) == 2 })
	for _, s := range spans {
		if s.TraceID != id {
			t.Errorf("span %s has trace %s, want %s", s.Name, s.TraceID, id)
		}
		if s.Resource["service.name"] != "infleet" || s.Resource["service.version"] != "1.2.3" {
			t.Errorf("resource = %v", s.Resource)
		}
	}
	h := rcv.Headers()[0]
	if h.Get("X-Tenant") != "acme" || h.Get("Authorization") != "Bearer t0ken" {
		t.Errorf("export headers = %v; want the config's x-tenant over the environment's, and its authorization", h)
	}
}

func TestEndpointFromTheEnvironment(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]func(url string) map[string]string{
		"base URL, path added": func(url string) map[string]string { return map[string]string{otlp.EnvEndpoint: url} },
		"traces URL as is": func(url string) map[string]string {
			return map[string]string{otlp.EnvTracesEndpoint: url + "/v1/traces"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rcv, url := otlptest.StartHTTP(t)
			export(t, otlp.Config{SampleRatio: 1, Getenv: env(vars(url))})
			rcv.Wait(t, 5*time.Second, func(s []otlptest.Span) bool { return len(s) == 2 })
		})
	}
}

func TestExportsOverOTLPGRPC(t *testing.T) {
	t.Parallel()
	rcv, addr := otlptest.StartGRPC(t)
	id := export(t, otlp.Config{Endpoint: addr, Protocol: otlp.ProtocolGRPC, Insecure: true, SampleRatio: 1,
		Headers: map[string]string{"x-tenant": "acme"}})
	spans := rcv.Wait(t, 5*time.Second, func(s []otlptest.Span) bool { return len(s) == 2 })
	if spans[0].TraceID != id || spans[1].TraceID != id {
		t.Errorf("spans %v not of trace %s", spans, id)
	}
	if got := rcv.Headers()[0].Get("x-tenant"); got != "acme" {
		t.Errorf("gRPC metadata x-tenant = %q", got)
	}
}

func TestSampleRatioZeroRecordsNoNewTrace(t *testing.T) {
	t.Parallel()
	tp, err := otlp.New(context.Background(), otlp.Config{Endpoint: "http://127.0.0.1:1", SampleRatio: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, span := tp.Tracer("test").Start(context.Background(), "root")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsSampled() {
		t.Error("a root span was sampled at ratio 0")
	}
	if !span.SpanContext().IsValid() || strings.Trim(span.SpanContext().TraceID().String(), "0") == "" {
		t.Error("an unsampled span should still carry a trace id to pass on")
	}
}
