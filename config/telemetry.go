package config

import (
	"net"
	"net/url"
	"strings"
)

// Defaults and values of the telemetry section.
const (
	// OTLPProtocolHTTP is OTLP over HTTP with protobuf bodies (the collector's port 4318).
	OTLPProtocolHTTP = "http"
	// OTLPProtocolGRPC is OTLP over gRPC (the collector's port 4317).
	OTLPProtocolGRPC = "grpc"
	// DefaultSampleRatio samples every trace that starts in infleet.
	DefaultSampleRatio = 1.0
)

// Telemetry configures what infleet sends beyond its logs and GET /metrics: OpenTelemetry
// traces over OTLP and CloudWatch Embedded Metric Format lines.
type Telemetry struct {
	OTLP OTLP `yaml:"otlp,omitempty"`
	// EMF writes the key metrics (jobs completed and failed per task, model call latency and
	// tokens per model) to stdout as CloudWatch Embedded Metric Format JSON lines, for ECS,
	// Lambda-style platforms and anything else that ships stdout to CloudWatch Logs. Default
	// false.
	EMF bool `yaml:"emf,omitempty"`
}

// OTLP configures the export of traces over OTLP. With no endpoint here and none in the
// standard OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables, no span
// is made or exported.
type OTLP struct {
	// Endpoint is the collector: a URL (http://collector:4318, https://otlp.example.com) or
	// host:port. Default none: the OTEL_EXPORTER_OTLP_* variables decide, and with none set
	// tracing is off.
	Endpoint string `yaml:"endpoint,omitempty"`
	// Protocol is http (OTLP/HTTP with protobuf bodies) or grpc. Default: the
	// OTEL_EXPORTER_OTLP_PROTOCOL variable when it says grpc, else http.
	Protocol string `yaml:"protocol,omitempty"`
	// Headers are sent with every export (a vendor's API key header, a tenant). They are
	// added to those of OTEL_EXPORTER_OTLP_HEADERS, which is where secrets belong. Default
	// none.
	Headers map[string]string `yaml:"headers,omitempty"`
	// Insecure sends to a host:port endpoint in plain text rather than TLS; a URL endpoint's
	// scheme says it instead. Default false.
	Insecure bool `yaml:"insecure,omitempty"`
	// SampleRatio is the share of traces that start in infleet which are recorded and
	// exported, from 0 to 1; a trace whose caller sent a traceparent follows the caller's
	// decision. Default 1.
	SampleRatio *float64 `yaml:"sample_ratio,omitempty"`
}

// Ratio returns the sample ratio, DefaultSampleRatio when unset.
func (o OTLP) Ratio() float64 {
	if o.SampleRatio == nil {
		return DefaultSampleRatio
	}
	return *o.SampleRatio
}

// checkTelemetry checks that the OTLP endpoint is a URL or host:port and agrees with insecure.
func (c *Config) checkTelemetry(p *problems) {
	o := c.Telemetry.OTLP
	if o.Endpoint == "" {
		// The OTEL_EXPORTER_OTLP_* variables may give it; the other settings then apply.
		return
	}
	if strings.Contains(o.Endpoint, "://") {
		u, err := url.Parse(o.Endpoint)
		switch {
		case err != nil || u.Host == "":
			p.add("telemetry.otlp.endpoint", "must be a URL such as http://collector:4318 or host:port such as collector:4317")
		case u.Scheme != "http" && u.Scheme != "https":
			p.add("telemetry.otlp.endpoint", "scheme %q is not http or https (write http://collector:4318, or collector:4317 with insecure for plain text)", u.Scheme)
		case u.Scheme == "https" && o.Insecure:
			p.add("telemetry.otlp.insecure", "contradicts the https endpoint; remove insecure or use an http:// endpoint")
		}
		return
	}
	if _, port, err := net.SplitHostPort(o.Endpoint); err != nil || port == "" {
		p.add("telemetry.otlp.endpoint", "must be a URL such as http://collector:4318 or host:port such as collector:4317")
	}
}
