package kafka_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/segmentio/kafka-go/sasl"

	infkafka "github.com/infleet/infleet/adapters/kafka"
	"github.com/infleet/infleet/adapters/kafka/kafkatest"
)

// TestMSKIAMPayload checks the first SASL message of aws-msk-iam as the mechanism makes it
// for a broker: MSK's JSON of a SigV4-presigned kafka-cluster:Connect, for the broker's host,
// with the access key, day and region in the credential scope and the session token.
func TestMSKIAMPayload(t *testing.T) {
	t.Parallel()
	mech, err := infkafka.NewSASLMechanism(infkafka.SASLOptions{
		Mechanism:      infkafka.SASLAWSMSKIAM,
		AWSCredentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "session-token"),
		AWSRegion:      "eu-west-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if mech.Name() != kafkatest.MSKIAMMechanism {
		t.Fatalf("mechanism name %q; want %s", mech.Name(), kafkatest.MSKIAMMechanism)
	}
	const host = "b-1.infleet.abc123.c2.kafka.eu-west-1.amazonaws.com"
	ctx := sasl.WithMetadata(context.Background(), &sasl.Metadata{Host: host, Port: 9098})
	before := time.Now().UTC().Format("20060102")
	_, payload, err := mech.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]string
	if err := json.Unmarshal(payload, &fields); err != nil {
		t.Fatalf("payload %s is not a JSON object of strings: %v", payload, err)
	}
	day := time.Now().UTC().Format("20060102")
	if day != before && strings.Contains(string(payload), "/"+before+"/") {
		day = before // signed just before midnight UTC
	}
	for k, want := range map[string]string{
		"version":              "2020_10_22",
		"action":               "kafka-cluster:Connect",
		"host":                 host,
		"x-amz-algorithm":      "AWS4-HMAC-SHA256",
		"x-amz-credential":     "AKIDEXAMPLE/" + day + "/eu-west-1/kafka-cluster/aws4_request",
		"x-amz-signedheaders":  "host",
		"x-amz-security-token": "session-token",
		"x-amz-expires":        "300",
	} {
		if fields[k] != want {
			t.Errorf("%s is %q; want %q", k, fields[k], want)
		}
	}
	if !strings.HasPrefix(fields["x-amz-date"], day+"T") {
		t.Errorf("x-amz-date %q is not today in yyyyMMddTHHmmssZ", fields["x-amz-date"])
	}
	if len(fields["x-amz-signature"]) != 64 || fields["user-agent"] == "" {
		t.Errorf("x-amz-signature %q (want 64 hex digits), user-agent %q", fields["x-amz-signature"], fields["user-agent"])
	}
	if strings.Contains(string(payload), "wJalrXUtnFEMI") {
		t.Error("the payload carries the secret access key")
	}
}

// TestMSKIAMEndToEnd connects over TLS to a broker that verifies AWS_MSK_IAM signatures
// itself: the check passes, a message goes through, and every payload the broker received
// was correctly signed for its host; a wrong secret key fails the check at the SASL stage,
// at once.
func TestMSKIAMEndToEnd(t *testing.T) {
	t.Parallel()
	c := kafkatest.Start(t, kafkatest.Options{TLS: true, MSKIAMSecrets: map[string]string{"AKIDINFLEET": "right-secret"}})
	tlsCfg, err := infkafka.NewTLSConfig(infkafka.TLSOptions{CAFile: c.Certs.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	mechWith := func(secret string) sasl.Mechanism {
		t.Helper()
		m, err := infkafka.NewSASLMechanism(infkafka.SASLOptions{
			Mechanism:      infkafka.SASLAWSMSKIAM,
			AWSCredentials: credentials.NewStaticCredentialsProvider("AKIDINFLEET", secret, ""),
			AWSRegion:      "us-east-2",
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	admin := infkafka.Cluster{Brokers: c.Brokers, TLS: tlsCfg, SASL: mechWith("right-secret")}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := admin.Check(ctx); err != nil {
		t.Fatalf("check: %v", err)
	}
	topic := "jobs_" + watermill.NewShortUUID()
	if err := admin.EnsureTopics(ctx, 1, 1, topic); err != nil {
		t.Fatal(err)
	}
	pub, err := infkafka.NewPublisher(infkafka.PublisherConfig{Brokers: c.Brokers, TLS: tlsCfg, SASL: admin.SASL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	cfg := subscriberConfig(&testBundle{brokers: c.Brokers}, newGroup())
	cfg.TLS, cfg.SASL, cfg.MemoryRetries = tlsCfg, admin.SASL, true
	sub := newSubscriber(t, cfg)
	sent := message.NewMessage(newID(), []byte("via iam"))
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	got := receive(t, subscribe(t, sub, topic), waitLong)
	if got.UUID != sent.UUID {
		t.Fatalf("got %s; want %s", got.UUID, sent.UUID)
	}
	got.Ack()

	payloads := c.MSKIAMPayloads()
	if len(payloads) < 3 { // the check, the publisher, the group and reader at least
		t.Fatalf("the broker saw %d AWS_MSK_IAM authentications; want one per connection", len(payloads))
	}
	for i, p := range payloads {
		if p.Err != nil || p.Fields["host"] != "127.0.0.1" || !strings.Contains(p.Fields["x-amz-credential"], "/us-east-2/kafka-cluster/") {
			t.Fatalf("authentication %d: %v, fields %v", i, p.Err, p.Fields)
		}
	}

	checkFails(t, infkafka.Cluster{Brokers: c.Brokers, TLS: tlsCfg, SASL: mechWith("wrong-secret")}, infkafka.StageSASL)
	last := c.MSKIAMPayloads()
	if p := last[len(last)-1]; p.Err == nil || !strings.Contains(p.Err.Error(), "signature") {
		t.Fatalf("the broker took the wrong secret's signature: %v", p.Err)
	}
}
