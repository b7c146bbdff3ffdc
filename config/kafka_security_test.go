package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestKafkaSecuritySettings(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, `
transport:
  kind: kafka
  kafka:
    brokers: ["b-1.msk:9098"]
    tls: {enabled: true, ca_file: /etc/ca.pem, cert_file: c.pem, key_file: k.pem, server_name: kafka.internal}
    sasl: {mechanism: aws-msk-iam, aws_region: eu-west-1}
notify:
  kafka:
    topic: events
    brokers: ["events:9093"]
    tls: {insecure_skip_verify: true, allow_insecure: true}
    sasl: {mechanism: scram-sha-256, username: ev}
`), []string{"INFLEET_NOTIFY_KAFKA_SASL_PASSWORD=from-env"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	k := c.Transport.Kafka
	if want := (KafkaTLS{Enabled: true, CAFile: "/etc/ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "kafka.internal"}); k.TLS != want {
		t.Errorf("transport.kafka.tls = %+v, want %+v", k.TLS, want)
	}
	if want := (KafkaSASL{Mechanism: KafkaSASLAWSMSKIAM, AWSRegion: "eu-west-1"}); k.SASL != want {
		t.Errorf("transport.kafka.sasl = %+v, want %+v", k.SASL, want)
	}
	if n := c.Notify.Kafka; n.SASL.Password != "from-env" || !n.TLS.On() || n.SASL.Username != "ev" {
		t.Errorf("notify.kafka = %+v", n)
	}
	if (KafkaTLS{}).On() || !(KafkaTLS{CAFile: "x"}).On() {
		t.Error("KafkaTLS.On is wrong")
	}
}

func TestKafkaSecurityProblemsNameTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string // fields, in order
	}{
		{"unknown mechanism", `sasl: {mechanism: gssapi, username: u, password: p}`,
			[]string{"transport.kafka.sasl.mechanism"}},
		{"username without password", `{tls: {enabled: true}, sasl: {mechanism: plain, username: u}}`,
			[]string{"transport.kafka.sasl.password"}},
		{"scram without credentials", `sasl: {mechanism: scram-sha-512}`,
			[]string{"transport.kafka.sasl.username", "transport.kafka.sasl.password"}},
		{"credentials without mechanism", `sasl: {username: u, password: p}`,
			[]string{"transport.kafka.sasl.mechanism"}},
		{"plain in clear", `sasl: {mechanism: plain, username: u, password: p}`,
			[]string{"transport.kafka.sasl.mechanism"}},
		{"plain in clear on a test cluster", `{tls: {allow_insecure: true}, sasl: {mechanism: plain, username: u, password: p}}`,
			nil},
		{"msk iam without tls", `sasl: {mechanism: aws-msk-iam}`,
			[]string{"transport.kafka.sasl.mechanism"}},
		{"msk iam with a password", `{tls: {enabled: true}, sasl: {mechanism: aws-msk-iam, username: u, password: p}}`,
			[]string{"transport.kafka.sasl.username"}},
		{"region without msk iam", `sasl: {mechanism: scram-sha-256, username: u, password: p, aws_region: us-east-1}`,
			[]string{"transport.kafka.sasl.aws_region"}},
		{"cert without key", `tls: {cert_file: c.pem}`,
			[]string{"transport.kafka.tls.key_file"}},
		{"key without cert", `tls: {key_file: k.pem}`,
			[]string{"transport.kafka.tls.cert_file"}},
		{"insecure without consent", `tls: {insecure_skip_verify: true}`,
			[]string{"transport.kafka.tls.insecure_skip_verify"}},
		{"insecure with consent", `tls: {insecure_skip_verify: true, allow_insecure: true}`,
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yaml := "transport:\n  kind: kafka\n  kafka:\n    brokers: [\"k:9092\"]\n"
			if strings.HasPrefix(tc.yaml, "{") {
				// A flow mapping of tls and sasl: merge it under kafka.
				yaml = "transport: {kind: kafka, kafka: {brokers: [\"k:9092\"], " + strings.TrimSuffix(strings.TrimPrefix(tc.yaml, "{"), "}") + "}}\n"
			} else {
				yaml += "    " + tc.yaml + "\n"
			}
			_, err := Load(writeConfig(t, yaml), nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var fields []string
			for _, p := range problemsOf(t, err) {
				fields = append(fields, p.Field)
				if strings.Contains(p.Message, "p}") {
					t.Errorf("problem shows the config: %v", p)
				}
			}
			if !slices.Equal(fields, tc.want) {
				t.Errorf("problems %v, want fields %v", problemsOf(t, err), tc.want)
			}
		})
	}
}

func TestNotifyKafkaSecurityNeedsItsOwnBrokers(t *testing.T) {
	t.Parallel()
	_, err := Load(writeConfig(t, `
notify:
  kafka: {topic: events, sasl: {mechanism: scram-sha-256, username: u}}
`), nil)
	var fields []string
	for _, p := range problemsOf(t, err) {
		fields = append(fields, p.Field)
	}
	if want := []string{"notify.kafka.sasl.password", "notify.kafka.brokers"}; !slices.Equal(fields, want) {
		t.Errorf("problems %v, want fields %v", problemsOf(t, err), want)
	}
	if !strings.Contains(problemsOf(t, err)[0].Message, "INFLEET_NOTIFY_KAFKA_SASL_PASSWORD") {
		t.Errorf("the password problem does not say which variable to set: %v", problemsOf(t, err)[0])
	}
}

// TestREADMEKafkaSecurityExamplesValidate loads each example of the README's Kafka security
// part, the password coming from the environment as the README says.
func TestREADMEKafkaSecurityExamplesValidate(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n<!-- kafka-security-examples -->\n```yaml\n")
	if !ok {
		t.Fatal("README.md has no ```yaml block after <!-- kafka-security-examples -->")
	}
	block, _, _ := strings.Cut(after, "\n```")
	docs := strings.Split(block, "\n---\n")
	if len(docs) != 3 {
		t.Fatalf("%d examples; want MSK IAM, Confluent Cloud and SCRAM", len(docs))
	}
	want := []string{KafkaSASLAWSMSKIAM, KafkaSASLPlain, KafkaSASLScramSHA512}
	for i, doc := range docs {
		var environ []string
		if want[i] != KafkaSASLAWSMSKIAM {
			environ = []string{"INFLEET_TRANSPORT_KAFKA_SASL_PASSWORD=from-env"}
		}
		c, err := Load(writeConfig(t, doc), environ)
		if err != nil {
			t.Fatalf("example %d:\n%s\n%v", i, doc, err)
		}
		if k := c.Transport.Kafka; k.SASL.Mechanism != want[i] || !k.TLS.On() {
			t.Errorf("example %d: sasl %+v, tls %+v", i, k.SASL, k.TLS)
		}
	}
}
