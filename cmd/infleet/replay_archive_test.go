package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/infleet/infleet/adapters/eventbridge/ebtest"
	"github.com/infleet/infleet/adapters/sqs"
	"github.com/infleet/infleet/internal/awstest"
	"github.com/infleet/infleet/messages"
)

// fakeEventBridge is an EventBridge with the bus "jobs" and its archive "jobs-archive".
func fakeEventBridge(t *testing.T) *ebtest.Server {
	srv := ebtest.New(t)
	srv.AddBus("jobs")
	srv.AddArchive("jobs-archive", "jobs")
	return srv
}

// TestReplayArchiveEndToEnd runs `infleet replay --archive` against a fake EventBridge reached
// through INFLEET_AWS_ENDPOINT, as an operator on an emulator would. It sets the environment,
// so it does not run in parallel.
func TestReplayArchiveEndToEnd(t *testing.T) {
	srv := fakeEventBridge(t)
	t.Setenv("INFLEET_AWS_ENDPOINT", srv.URL)
	path := writeConfig(t, "notify:\n  eventbridge: {bus: jobs}\n")
	var out, errOut bytes.Buffer
	rc := run([]string{"replay", "--config", path, "--archive", "jobs-archive",
		"--from", "2026-11-20T00:00:00Z", "--to", "2026-11-21T00:00:00Z", "--poll", "1ms"}, &out, &errOut)
	if rc != 0 {
		t.Fatalf("replay: rc %d\n%s%s", rc, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), ": COMPLETED (events from 2026-11-20T00:00:00Z to 2026-11-21T00:00:00Z replayed onto jobs)") {
		t.Errorf("final line %q", out.String())
	}
	for _, want := range []string{"STARTING", "RUNNING", " 50%", "100%"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("progress %q does not show %q", errOut.String(), want)
		}
	}
	name := strings.TrimSuffix(strings.Fields(out.String())[1], ":")
	if !strings.HasPrefix(name, "infleet-") {
		t.Fatalf("replay name %q is not infleet-<time>", name)
	}
	rp, ok := srv.Replay(name)
	if !ok || rp.ArchiveARN != ebtest.ArchiveARN("jobs-archive") || rp.DestinationARN != ebtest.BusARN("jobs") ||
		!rp.From.Equal(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)) || !rp.To.Equal(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("replay started as %+v (found %v)", rp, ok)
	}
}

func TestReplayArchiveFailureSaysWhy(t *testing.T) {
	t.Parallel()
	srv := fakeEventBridge(t)
	srv.Script = []ebtest.Step{{State: "STARTING"}, {State: "FAILED", Reason: "the archive's events could not be read"}}
	path := writeConfig(t, fmt.Sprintf("notify:\n  eventbridge: {bus: jobs, endpoint: %q}\n", srv.URL))
	var out, errOut bytes.Buffer
	rc := run([]string{"replay", "--config", path, "--archive", "jobs-archive", "--name", "rp-fail",
		"--from", "2026-11-20T00:00:00Z", "--to", "2026-11-21T00:00:00Z", "--poll", "1ms"}, &out, &errOut)
	if rc != 1 || !strings.Contains(errOut.String(), `EventBridge replay "rp-fail" failed: the archive's events could not be read`) {
		t.Fatalf("rc %d, stderr %q; want 1 and the reason", rc, errOut.String())
	}
	rc = run([]string{"replay", "--config", path, "--archive", "no-such-archive", "--since", "1h"}, &out, &errOut)
	if rc != 1 || !strings.Contains(errOut.String(), `EventBridge archive "no-such-archive" does not exist`) {
		t.Fatalf("missing archive: rc %d, stderr %q", rc, errOut.String())
	}
}

func TestReplayArchiveUsageErrors(t *testing.T) {
	t.Parallel()
	noBus := writeConfig(t, "log: {level: warn}\n")
	withBus := writeConfig(t, "notify:\n  eventbridge: {bus: jobs, endpoint: \"http://127.0.0.1:1\"}\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--config", withBus, "--archive", "a"}, "--archive needs the time range"},
		{[]string{"--config", withBus, "--archive", "a", "--from", "2026-11-20T00:00:00Z"}, "--archive needs the time range"},
		{[]string{"--config", withBus, "--archive", "a", "--from", "yesterday", "--to", "2026-11-21T00:00:00Z"}, `--from "yesterday" is not an RFC 3339 time`},
		{[]string{"--config", withBus, "--archive", "a", "--from", "2026-11-22T00:00:00Z", "--to", "2026-11-21T00:00:00Z"}, "is not before --to"},
		{[]string{"--config", withBus, "--archive", "a", "--since", "1h", "--from", "2026-11-22T00:00:00Z"}, "not both"},
		{[]string{"--config", noBus, "--archive", "a", "--since", "1h"}, "notify.eventbridge.bus"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if rc := run(append([]string{"replay"}, c.args...), &out, &errOut); rc != exitUsage || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("replay %v: rc %d, stderr %q; want %d and %q", c.args, rc, errOut.String(), exitUsage, c.want)
		}
	}
}

// TestReplayedEventBridgeEnvelopeCarriesReplayName drops EventBridge envelopes with a
// replay-name, as an archive replay delivers them through a rule to an SQS target, on the
// queue of a running infleet: a job that ran already runs again under that replay, and a job
// first seen in a replay records it too.
func TestReplayedEventBridgeEnvelopeCarriesReplayName(t *testing.T) {
	t.Parallel()
	endpoint := awstest.Endpoint(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := awssqs.New(awssqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	suffix := uuid.NewString()[:8]
	q := func(p string) string { return "infleet-" + p + "-" + suffix }
	err := sqs.EnsureQueues(ctx, client, sqs.QueueSpec{Queues: []string{q("high"), q("normal"), q("low")}, DeadLetterQueue: q("dead")})
	if err != nil {
		t.Fatal(err)
	}
	h := startServe(t, e2eConfig+fmt.Sprintf(`
transport:
  kind: sqs
  sqs:
    queues: {high: %s, normal: %s, low: %s}
    dead_letter_queue: %s
    visibility_timeout: 30s
    endpoint: %q
`, q("high"), q("normal"), q("low"), q("dead"), endpoint))

	ran := h.submit(`{"task":"summarize","input":{"text":"run me twice"}}`)
	h.waitStatus(ran, messages.StatusCompleted)
	fresh := "eb-" + suffix

	envelope := func(jobID, text string) string {
		return fmt.Sprintf(`{"version":"0","id":"ev-%s","detail-type":"infleet job","source":"producer","account":"000000000000",`+
			`"time":"2026-11-23T12:00:00Z","region":"us-east-1","resources":[],"replay-name":"rp-42",`+
			`"detail":{"job_id":%q,"task":"summarize","input":{"text":%q}}}`, jobID, jobID, text)
	}
	queueURL, err := client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(q("normal"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{envelope(ran, "run me twice"), envelope(fresh, "first seen in a replay")} {
		if _, err := client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: queueURL.QueueUrl, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{ran, fresh} {
		var rec messages.JobRecord
		deadline := time.Now().Add(20 * time.Second)
		for rec.Status != messages.StatusCompleted || rec.ReplayName != "rp-42" {
			if time.Now().After(deadline) {
				t.Fatalf("job %s did not complete under replay rp-42 within 20s: %+v", id, rec)
			}
			time.Sleep(20 * time.Millisecond)
			if code, _, _ := h.do("GET", "/v1/jobs/"+id, "", nil); code == 200 {
				rec = h.job(id)
			}
		}
	}
}
