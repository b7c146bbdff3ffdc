package kafka_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/segmentio/kafka-go/sasl"

	infkafka "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/adapters/kafka/kafkatest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// secured is a cluster requiring TLS and SASL, and the client side that gets in.
type secured struct {
	cluster *kafkatest.Cluster
	tls     *tls.Config
	sasl    sasl.Mechanism
}

func (s secured) admin() infkafka.Cluster {
	return infkafka.Cluster{Brokers: s.cluster.Brokers, TLS: s.tls, SASL: s.sasl}
}

// setupSecured starts a cluster that requires TLS (with a client certificate when mtls) and
// SASL by mechanism, and builds the client's TLS and SASL from options, as the wiring does.
func setupSecured(t *testing.T, mechanism string, mtls bool) secured {
	t.Helper()
	kfakeName := map[string]string{
		infkafka.SASLPlain: kafkatest.Plain, infkafka.SASLScramSHA256: kafkatest.ScramSHA256, infkafka.SASLScramSHA512: kafkatest.ScramSHA512,
	}[mechanism]
	c := kafkatest.Start(t, kafkatest.Options{TLS: true, ClientCerts: mtls, Users: []kafkatest.User{{Mechanism: kfakeName, Name: "infleet", Password: "s3cret"}}})
	opts := infkafka.TLSOptions{CAFile: c.Certs.CAFile}
	if mtls {
		opts.CertFile, opts.KeyFile = c.Certs.ClientCertFile, c.Certs.ClientKeyFile
	}
	tlsCfg, err := infkafka.NewTLSConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	mech, err := infkafka.NewSASLMechanism(infkafka.SASLOptions{Mechanism: mechanism, Username: "infleet", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	return secured{cluster: c, tls: tlsCfg, sasl: mech}
}

// TestSecuredTransport runs a job's whole path on clusters that require TLS and each SASL
// mechanism: topics created, a message published and consumed, nacked with a delay through
// the retry topic and back, its depth read, a dead letter kept, scanned and removed, and an
// event written by the notifier and read back.
func TestSecuredTransport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mechanism string
		mtls      bool
	}{
		{infkafka.SASLPlain, false},
		{infkafka.SASLScramSHA256, true},
		{infkafka.SASLScramSHA512, false},
	} {
		t.Run(tc.mechanism, func(t *testing.T) {
			t.Parallel()
			s := setupSecured(t, tc.mechanism, tc.mtls)
			ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
			defer cancel()
			if err := s.admin().Check(ctx); err != nil {
				t.Fatalf("check: %v", err)
			}
			topic, dead, events := "jobs_"+watermill.NewShortUUID(), "dead_"+watermill.NewShortUUID(), "events_"+watermill.NewShortUUID()
			if err := s.admin().EnsureTopics(ctx, 1, 1, topic, infkafka.RetryTopic(topic), dead, events); err != nil {
				t.Fatal(err)
			}
			if err := s.admin().EnsureCompactedTopics(ctx, 1, 1, infkafka.RemovedTopic(dead)); err != nil {
				t.Fatal(err)
			}

			pub, err := infkafka.NewPublisher(infkafka.PublisherConfig{Brokers: s.cluster.Brokers, TLS: s.tls, SASL: s.sasl})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })
			cfg := subscriberConfig(&testBundle{brokers: s.cluster.Brokers}, newGroup())
			cfg.TLS, cfg.SASL, cfg.CreateMissingTopics = s.tls, s.sasl, false
			sub := newSubscriber(t, cfg)

			sent := message.NewMessage(newID(), []byte(`{"job":1}`))
			if err := pub.Publish(topic, sent); err != nil {
				t.Fatal(err)
			}
			ch := subscribe(t, sub, topic)
			got := receive(t, ch, waitLong)
			if got.UUID != sent.UUID || string(got.Payload) != `{"job":1}` {
				t.Fatalf("got %s %s; want %s", got.UUID, got.Payload, sent.UUID)
			}
			got.Metadata.Set(messages.MetaNackDelay, "300ms")
			got.Nack()
			again := receive(t, ch, waitLong)
			if again.UUID != sent.UUID {
				t.Fatalf("got %s back from the retry topic; want %s", again.UUID, sent.UUID)
			}
			again.Ack()
			waitDepth(t, sub, topic, 0)
			waitDepth(t, sub, infkafka.RetryTopic(topic), 0)

			if err := pub.Publish(dead, message.NewMessage(newID(), []byte("gave up"))); err != nil {
				t.Fatal(err)
			}
			letters := scanAll(t, sub, dead)
			if len(letters) != 1 || letters[0].payload != "gave up" {
				t.Fatalf("dead letters %v; want the one published", letters)
			}
			if err := sub.RemoveDeadLetter(ctx, dead, letters[0].id); err != nil {
				t.Fatal(err)
			}
			if left := scanAll(t, sub, dead); len(left) != 0 {
				t.Fatalf("dead letters after removal: %v", left)
			}

			n, err := infkafka.NewNotifier(infkafka.NotifierConfig{Brokers: s.cluster.Brokers, Topic: events, TLS: s.tls, SASL: s.sasl})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close() })
			if err := n.Notify(ctx, pipeline.Notification{Event: messages.Event{Type: "job.completed", JobID: "job-1", Status: messages.StatusCompleted}}); err != nil {
				t.Fatal(err)
			}
			ev := receive(t, subscribe(t, sub, events), waitLong)
			var e messages.Event
			if err := json.Unmarshal(ev.Payload, &e); err != nil || e.JobID != "job-1" || e.Type != "job.completed" {
				t.Fatalf("event %s (%v); want job-1's job.completed", ev.Payload, err)
			}
			ev.Ack()
		})
	}
}

// checkFails runs Check on c and returns its error, failing unless it is a *CheckError at
// stage that comes well within the check's bound.
func checkFails(t *testing.T, c infkafka.Cluster, stage string) *infkafka.CheckError {
	t.Helper()
	return checkFailsWithin(t, c, stage, time.Second)
}

// checkFailsWithin is checkFails where failing takes up to within.
func checkFailsWithin(t *testing.T, c infkafka.Cluster, stage string, within time.Duration) *infkafka.CheckError {
	t.Helper()
	start := time.Now()
	err := c.Check(context.Background())
	took := time.Since(start)
	var cerr *infkafka.CheckError
	if !errors.As(err, &cerr) {
		t.Fatalf("check: %v; want a *CheckError", err)
	}
	if cerr.Stage != stage {
		t.Fatalf("check failed at stage %q (%v); want %q", cerr.Stage, err, stage)
	}
	if took > within {
		t.Fatalf("check took %s to fail (%v); want at most %s", took, err, within)
	}
	return cerr
}

// TestCheckNamesWhatFailed checks that a wrong password, an unknown user, a mechanism the
// broker lacks, a wrong CA, a missing client certificate, TLS against a plaintext listener
// and SASL skipped each fail Check quickly, at the stage to fix.
func TestCheckNamesWhatFailed(t *testing.T) {
	t.Parallel()
	s := setupSecured(t, infkafka.SASLScramSHA512, true)
	mech := func(m, user, pass string) sasl.Mechanism {
		t.Helper()
		got, err := infkafka.NewSASLMechanism(infkafka.SASLOptions{Mechanism: m, Username: user, Password: pass})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	tlsWith := func(opts infkafka.TLSOptions) *tls.Config {
		t.Helper()
		got, err := infkafka.NewTLSConfig(opts)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	brokers := s.cluster.Brokers
	certs := s.cluster.Certs

	wrong := checkFails(t, infkafka.Cluster{Brokers: brokers, TLS: s.tls, SASL: mech(infkafka.SASLScramSHA512, "infleet", "wrong")}, infkafka.StageSASL)
	if strings.Contains(wrong.Error(), "wrong") {
		t.Fatalf("the error shows the password: %v", wrong)
	}
	checkFails(t, infkafka.Cluster{Brokers: brokers, TLS: s.tls, SASL: mech(infkafka.SASLScramSHA512, "nobody", "s3cret")}, infkafka.StageSASL)
	checkFails(t, infkafka.Cluster{Brokers: brokers, TLS: s.tls, SASL: mech(infkafka.SASLPlain, "infleet", "s3cret")}, infkafka.StageSASL)
	checkFails(t, infkafka.Cluster{Brokers: brokers, TLS: tlsWith(infkafka.TLSOptions{
		CAFile: certs.OtherCAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}), SASL: s.sasl}, infkafka.StageTLS)
	checkFails(t, infkafka.Cluster{Brokers: brokers, TLS: tlsWith(infkafka.TLSOptions{CAFile: certs.CAFile}), SASL: s.sasl}, infkafka.StageTLS)
	checkFails(t, infkafka.Cluster{Brokers: brokers, TLS: tlsWith(infkafka.TLSOptions{
		CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile, ServerName: "kafka.example.com"}), SASL: s.sasl}, infkafka.StageTLS)
	checkFails(t, infkafka.Cluster{Brokers: brokers, TLS: s.tls}, infkafka.StageSASL)

	// A broker that is down is passed over for the next; one that refuses the credentials
	// ends the check, as every other would refuse them too.
	down := "127.0.0.1:1"
	if err := (infkafka.Cluster{Brokers: []string{down, brokers[0]}, TLS: s.tls, SASL: s.sasl}).Check(context.Background()); err != nil {
		t.Fatalf("check past a broker that is down: %v", err)
	}
	checkFails(t, infkafka.Cluster{Brokers: []string{down}, TLS: s.tls, SASL: s.sasl}, infkafka.StageConnect)
	refused := checkFails(t, infkafka.Cluster{Brokers: []string{brokers[0], down}, TLS: s.tls, SASL: mech(infkafka.SASLScramSHA512, "infleet", "wrong")}, infkafka.StageSASL)
	if refused.Broker != brokers[0] {
		t.Fatalf("the check went on to %s after a refusal", refused.Broker)
	}

	plaintext := kafkatest.Start(t, kafkatest.Options{})
	// kfake waits for the rest of the huge request a TLS hello reads as: the handshake's own
	// bound ends it (a real broker hangs up at once).
	checkFailsWithin(t, infkafka.Cluster{Brokers: plaintext.Brokers, TLS: s.tls}, infkafka.StageTLS, infkafka.DefaultCheckTimeout/2)
	if err := (infkafka.Cluster{Brokers: plaintext.Brokers}).Check(context.Background()); err != nil {
		t.Fatalf("check of a plaintext cluster without TLS or SASL: %v", err)
	}
}

// TestSecurityOptionsRefused checks the option errors: a mechanism unknown, credentials
// missing, half a client certificate, a CA file that is not PEM.
func TestSecurityOptionsRefused(t *testing.T) {
	t.Parallel()
	for _, opts := range []infkafka.SASLOptions{
		{Mechanism: "gssapi", Username: "u", Password: "p"},
		{Mechanism: infkafka.SASLPlain, Username: "u"},
		{Mechanism: infkafka.SASLScramSHA256, Password: "p"},
		{Mechanism: infkafka.SASLAWSMSKIAM},
	} {
		if _, err := infkafka.NewSASLMechanism(opts); err == nil {
			t.Errorf("SASL options %+v were accepted", opts)
		}
	}
	if m, err := infkafka.NewSASLMechanism(infkafka.SASLOptions{}); m != nil || err != nil {
		t.Errorf("no mechanism gave %v, %v; want nil, nil", m, err)
	}
	certs := kafkatest.NewCerts(t)
	for _, opts := range []infkafka.TLSOptions{
		{CertFile: certs.ClientCertFile},
		{KeyFile: certs.ClientKeyFile},
		{CAFile: certs.ClientKeyFile},
		{CAFile: certs.Dir + "/missing.pem"},
		{CertFile: certs.ClientCertFile, KeyFile: certs.CAFile},
	} {
		if _, err := infkafka.NewTLSConfig(opts); err == nil {
			t.Errorf("TLS options %+v were accepted", opts)
		}
	}
	if c, err := infkafka.NewTLSConfig(infkafka.TLSOptions{}); c != nil || err != nil {
		t.Errorf("no TLS gave %v, %v; want nil, nil", c, err)
	}
	if c, err := infkafka.NewTLSConfig(infkafka.TLSOptions{Enabled: true}); c == nil || err != nil || c.RootCAs != nil || c.InsecureSkipVerify {
		t.Errorf("TLS with the system's roots gave %+v, %v", c, err)
	}
}
