package config

import (
	"strings"
	"testing"
)

func TestTelemetryDefaultsExportNothing(t *testing.T) {
	t.Parallel()
	c := Default()
	if c.Telemetry.OTLP.Endpoint != "" || c.Telemetry.EMF || c.Telemetry.OTLP.Ratio() != DefaultSampleRatio {
		t.Fatalf("default telemetry = %+v, want no endpoint, no EMF, ratio 1", c.Telemetry)
	}
}

func TestTelemetrySection(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, `telemetry:
  emf: true
  otlp: {endpoint: "collector:4317", protocol: grpc, insecure: true, sample_ratio: 0, headers: {x-tenant: acme}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Telemetry.OTLP
	if !c.Telemetry.EMF || o.Endpoint != "collector:4317" || o.Protocol != OTLPProtocolGRPC || !o.Insecure ||
		o.Ratio() != 0 || o.Headers["x-tenant"] != "acme" {
		t.Fatalf("telemetry = %+v", c.Telemetry)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}

	c, err = Load("", []string{"INFLEET_TELEMETRY_OTLP_ENDPOINT=http://collector:4318", "INFLEET_TELEMETRY_OTLP_SAMPLE_RATIO=0.25", "INFLEET_TELEMETRY_EMF=true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Telemetry.OTLP.Endpoint != "http://collector:4318" || c.Telemetry.OTLP.Ratio() != 0.25 || !c.Telemetry.EMF {
		t.Fatalf("telemetry from the environment = %+v", c.Telemetry)
	}
}

func TestTelemetrySectionProblems(t *testing.T) {
	t.Parallel()
	for body, field := range map[string]string{
		"telemetry: {otlp: {endpoint: \"collector\"}}\n":                              "telemetry.otlp.endpoint",
		"telemetry: {otlp: {endpoint: \"ftp://collector:21\"}}\n":                     "telemetry.otlp.endpoint",
		"telemetry: {otlp: {endpoint: \"https://collector:4318\", insecure: true}}\n": "telemetry.otlp.insecure",
		"telemetry: {otlp: {protocol: thrift}}\n":                                     "telemetry.otlp.protocol",
		"telemetry: {otlp: {sample_ratio: 1.5}}\n":                                    "telemetry.otlp.sample_ratio",
		"telemetry: {otlp: {headers: {\"bad header\": x}}}\n":                         "telemetry.otlp.headers",
		"telemetry: {emf: sometimes}\n":                                               "telemetry.emf",
	} {
		_, err := Load(writeConfig(t, body), nil)
		got := problemsOf(t, err)
		if len(got) != 1 || !strings.HasPrefix(got[0].Field, field) || got[0].Message == "" {
			t.Errorf("%q: problems %v, want one about %s", body, got, field)
		}
	}
}
