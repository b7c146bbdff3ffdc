package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	kafkaadapter "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/adapters/kafka/kafkatest"
	"github.com/infleet/infleet/messages"
)

// securedKafka starts a cluster that requires TLS with a client certificate and SASL
// SCRAM-SHA-512 for user infleet, password s3cret.
func securedKafka(t *testing.T) *kafkatest.Cluster {
	t.Helper()
	return kafkatest.Start(t, kafkatest.Options{TLS: true, ClientCerts: true,
		Users: []kafkatest.User{{Mechanism: kafkatest.ScramSHA512, Name: "infleet", Password: "s3cret"}}})
}

// securedKafkaConfig is the kafka section that gets into c with password, as one flow mapping
// under transport (or notify) with the given extra keys.
func securedKafkaConfig(c *kafkatest.Cluster, password, extra string) string {
	return fmt.Sprintf(`{brokers: [%q], tls: {ca_file: %q, cert_file: %q, key_file: %q}, sasl: {mechanism: scram-sha-512, username: infleet, password: %q}%s}`,
		c.Brokers[0], c.Certs.CAFile, c.Certs.ClientCertFile, c.Certs.ClientKeyFile, password, extra)
}

// runTimed runs the CLI with args and returns its exit status, its output and how long it took.
func runTimed(args ...string) (int, string, time.Duration) {
	var out, errOut bytes.Buffer
	start := time.Now()
	rc := run(args, &out, &errOut)
	return rc, out.String() + errOut.String(), time.Since(start)
}

// TestServeOnSecuredKafka runs init and serve on a cluster that requires mTLS and SCRAM:
// jobs of every priority complete, and their events reach notify.kafka.topic on the same
// cluster with the transport's TLS and SASL.
func TestServeOnSecuredKafka(t *testing.T) {
	t.Parallel()
	c := securedKafka(t)
	fleet := "transport: {kind: kafka, kafka: " + securedKafkaConfig(c, "s3cret", "") + "}\nnotify: {kafka: {topic: infleet.events}}\n"
	if rc, out, _ := runTimed("init", "--config", writeConfig(t, fleet+"log: {level: warn}\n"), "--data-dir", t.TempDir()); rc != 0 ||
		!strings.Contains(out, "notify kafka: topic infleet.events ready") {
		t.Fatalf("init: rc %d\n%s", rc, out)
	}
	h := startServe(t, e2eConfig+fleet)
	var ids []string
	for i, p := range []string{"high", "normal", "low"} {
		ids = append(ids, h.submit(fmt.Sprintf(`{"task":"summarize","priority":%q,"input":{"text":"secured job %d"}}`, p, i)))
	}
	for _, id := range ids {
		h.waitStatus(id, messages.StatusCompleted)
	}

	tlsCfg, err := kafkaadapter.NewTLSConfig(kafkaadapter.TLSOptions{CAFile: c.Certs.CAFile, CertFile: c.Certs.ClientCertFile, KeyFile: c.Certs.ClientKeyFile})
	if err != nil {
		t.Fatal(err)
	}
	mech, err := kafkaadapter.NewSASLMechanism(kafkaadapter.SASLOptions{Mechanism: kafkaadapter.SASLScramSHA512, Username: "infleet", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: c.Brokers, GroupID: "events", Topic: "infleet.events",
		Dialer:      &kafkago.Dialer{Timeout: 10 * time.Second, TLS: tlsCfg, SASLMechanism: mech},
		StartOffset: kafkago.FirstOffset, MaxWait: 100 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < len(ids) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("events read so far %v: %v", seen, err)
		}
		var ev messages.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil || ev.Type != "job.completed" {
			t.Fatalf("event %s (%v)", m.Value, err)
		}
		seen[ev.JobID] = true
	}
}

// TestDeadLettersOnSecuredKafka runs the dead-letter round trip (retries through the retry
// topics, dead letters, a redrive from the CLI) on a cluster that requires mTLS and SCRAM.
func TestDeadLettersOnSecuredKafka(t *testing.T) {
	runsTheBinary(t)
	c := securedKafka(t)
	fleet := "transport: {kind: kafka, kafka: " + securedKafkaConfig(c, "s3cret", "") + "}\n"
	kafkaInit(t, fleet+"log: {level: warn}\n")
	checkDeadLettersRoundTrip(t, fleet, func(logs string) {
		if strings.Contains(logs, "no retry topic") || strings.Contains(logs, "waits in memory") {
			t.Fatalf("retries did not go through the retry topics:\n%s", logs)
		}
	})
}

// TestKafkaStartUpNamesTheSetting starts init and serve with credentials or certificates the
// cluster refuses: each stops at once, exit status 1, with an error naming the setting to
// fix and never the password; configuration mistakes stop with exit status 2 before any
// connection.
func TestKafkaStartUpNamesTheSetting(t *testing.T) {
	t.Parallel()
	c := securedKafka(t)
	events := securedKafka(t)
	good := securedKafkaConfig(c, "s3cret", "")
	for _, tc := range []struct {
		name, fleet, want string
	}{
		{"wrong password", "transport: {kind: kafka, kafka: " + securedKafkaConfig(c, "hunter2", "") + "}\n", "transport.kafka.sasl:"},
		{"wrong CA", "transport: {kind: kafka, kafka: " + strings.Replace(good, c.Certs.CAFile, c.Certs.OtherCAFile, 1) + "}\n", "transport.kafka.tls:"},
		{"no client certificate", fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q], tls: {ca_file: %q}, sasl: {mechanism: scram-sha-512, username: infleet, password: s3cret}}}\n",
			c.Brokers[0], c.Certs.CAFile), "transport.kafka.tls:"},
		{"no TLS", fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q], sasl: {mechanism: scram-sha-512, username: infleet, password: s3cret}}}\n",
			c.Brokers[0]), "transport.kafka.tls:"},
		{"no SASL", fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q], tls: {ca_file: %q, cert_file: %q, key_file: %q}}}\n",
			c.Brokers[0], c.Certs.CAFile, c.Certs.ClientCertFile, c.Certs.ClientKeyFile), "transport.kafka.sasl:"},
		{"missing CA file", "transport: {kind: kafka, kafka: " + strings.Replace(good, c.Certs.CAFile, c.Certs.Dir+"/nope.pem", 1) + "}\n", "transport.kafka.tls:"},
		{"notify cluster's wrong password", "notify: {kafka: {topic: infleet.events, brokers: [" + fmt.Sprintf("%q", events.Brokers[0]) +
			"], tls: " + fmt.Sprintf("{ca_file: %q, cert_file: %q, key_file: %q}", events.Certs.CAFile, events.Certs.ClientCertFile, events.Certs.ClientKeyFile) +
			", sasl: {mechanism: scram-sha-512, username: infleet, password: hunter2}}}\n", "notify.kafka.sasl:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, cmd := range []string{"init", "serve"} {
				path := writeConfig(t, tc.fleet+e2eConfig)
				rc, out, took := runTimed(cmd, "--config", path, "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0")
				if rc != 1 || !strings.Contains(out, tc.want) {
					t.Fatalf("%s: rc %d, want 1 and %q in:\n%s", cmd, rc, tc.want, out)
				}
				if strings.Contains(out, "hunter2") {
					t.Fatalf("%s printed the password:\n%s", cmd, out)
				}
				if took > kafkaadapter.DefaultCheckTimeout {
					t.Fatalf("%s took %s to refuse; want at most %s", cmd, took, kafkaadapter.DefaultCheckTimeout)
				}
			}
		})
	}

	for _, tc := range []struct{ fleet, want string }{
		{fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q], tls: {insecure_skip_verify: true}}}\n", c.Brokers[0]), "transport.kafka.tls.insecure_skip_verify"},
		{fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q], tls: {enabled: true}, sasl: {mechanism: scram-sha-256, username: u}}}\n", c.Brokers[0]), "transport.kafka.sasl.password"},
		{fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q], sasl: {mechanism: oauthbearer}}}\n", c.Brokers[0]), "transport.kafka.sasl.mechanism"},
	} {
		rc, out, _ := runTimed("serve", "--config", writeConfig(t, tc.fleet+e2eConfig), "--data-dir", t.TempDir())
		if rc != exitUsage || !strings.Contains(out, tc.want) {
			t.Errorf("rc %d, want %d and %q in:\n%s", rc, exitUsage, tc.want, out)
		}
	}
}

// TestServeOnKafkaWithMSKIAM signs with the AWS SDK's default credential chain (here the
// environment) against a broker that checks AWS_MSK_IAM signatures: init and serve connect
// and complete a job, and a wrong secret key stops start-up naming transport.kafka.sasl.
// It sets environment variables, so it does not run in parallel.
func TestServeOnKafkaWithMSKIAM(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{TLS: true, MSKIAMSecrets: map[string]string{"AKIDMSKTEST": "msk-secret"}})
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDMSKTEST", "AWS_SECRET_ACCESS_KEY": "msk-secret", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "eu-central-1", "AWS_PROFILE": "", "AWS_CONFIG_FILE": t.TempDir() + "/none", "AWS_SHARED_CREDENTIALS_FILE": t.TempDir() + "/none",
	} {
		t.Setenv(k, v)
	}
	fleet := fmt.Sprintf("transport: {kind: kafka, kafka: {brokers: [%q], tls: {ca_file: %q}, sasl: {mechanism: aws-msk-iam}}}\n", c.Brokers[0], c.Certs.CAFile)
	kafkaInit(t, fleet+"log: {level: warn}\n")
	h := startServe(t, e2eConfig+fleet)
	h.waitStatus(h.submit(`{"task":"summarize","input":{"text":"signed"}}`), messages.StatusCompleted)
	payloads := c.MSKIAMPayloads()
	if len(payloads) == 0 {
		t.Fatal("the broker received no AWS_MSK_IAM authentication")
	}
	for _, p := range payloads {
		if p.Err != nil || !strings.HasPrefix(p.Fields["x-amz-credential"], "AKIDMSKTEST/") || !strings.Contains(p.Fields["x-amz-credential"], "/eu-central-1/kafka-cluster/") {
			t.Fatalf("authentication %v: %v", p.Fields, p.Err)
		}
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	rc, out, took := runTimed("init", "--config", writeConfig(t, fleet+e2eConfig), "--data-dir", t.TempDir())
	if rc != 1 || !strings.Contains(out, "transport.kafka.sasl:") || took > kafkaadapter.DefaultCheckTimeout {
		t.Fatalf("init with a wrong secret key: rc %d after %s:\n%s", rc, took, out)
	}
}
