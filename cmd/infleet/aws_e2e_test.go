package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infleet/infleet/internal/awstest"
	"github.com/infleet/infleet/messages"
)

// awsPeers are the emulators `make test` starts (.ci/peers/with-aws.sh).
type awsPeers struct {
	endpoint, dynamo string
	sqs              *awssqs.Client
	s3               *awss3.Client
}

// needAWSPeers skips t unless both emulators are up (fauxqs, found through awstest, and
// dynalite at INFLEET_TEST_DYNAMODB_ENDPOINT) and returns their addresses with SQS and S3
// clients on fauxqs.
func needAWSPeers(t *testing.T) awsPeers {
	t.Helper()
	p := awsPeers{endpoint: awstest.Endpoint(t), dynamo: os.Getenv("INFLEET_TEST_DYNAMODB_ENDPOINT")}
	if p.dynamo == "" {
		t.Skip("INFLEET_TEST_DYNAMODB_ENDPOINT is unset: run under .ci/peers/with-aws.sh (make test does)")
	}
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	p.sqs = awssqs.New(awssqs.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(p.endpoint)})
	p.s3 = awss3.New(awss3.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(p.endpoint), UsePathStyle: true})
	return p
}

// TestAWSFleet runs one ingress and two workers on SQS, DynamoDB and S3 (fauxqs and dynalite):
// jobs over HTTP, a job dropped straight on a queue, an S3 event notification, a poison
// message, a worker SIGKILLed mid-run, and the fleet scaled to zero and back.
func TestAWSFleet(t *testing.T) {
	p := needAWSPeers(t)
	t.Parallel()
	ctx := context.Background()
	sfx := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	q := func(n string) string { return "e2e-" + sfx + "-" + n }
	bucket, inbox := "e2e-results-"+sfx, "e2e-inbox-"+sfx
	f := newE2E(t, fmt.Sprintf(`
transport:
  kind: sqs
  sqs:
    queues: {high: %s, normal: %s, low: %s}
    dead_letter_queue: %s
    visibility_timeout: 4s
store: {kind: dynamodb, dynamodb: {table: %s, endpoint: %q}}
results: {kind: s3, s3: {bucket: %s, prefix: "results/"}}
workers: {concurrency: 16, max_attempts: 3, retry_backoff: {initial: 100ms, max: 1s}, shutdown_timeout: 5s}
models: [{name: fast, provider: sim, latency: 150ms}]
triggers:
  s3: [{bucket: %s, prefix: "docs/", suffix: ".txt", task: summarize, priority: low}]
log: {level: info}
`, q("high"), q("normal"), q("low"), q("dead"), "e2e-jobs-"+sfx, p.dynamo, bucket, inbox), "INFLEET_AWS_ENDPOINT="+p.endpoint)
	f.dataDir = "" // each process its own

	// init creates everything, and again changes nothing.
	for range 2 {
		if out := f.init(); !strings.Contains(out, q("dead")) || !strings.Contains(out, bucket) {
			t.Fatalf("init: nothing about %s and %s in\n%s", q("dead"), bucket, out)
		}
	}
	if _, err := p.s3.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(inbox)}); err != nil {
		t.Fatal(err)
	}

	ingress := f.start("ingress")
	workerA := f.start("worker")
	workerB := f.start("worker")
	api := ingress.api

	var ids []string
	for i := range 60 {
		prio := []string{"high", "normal", "low"}[i%3]
		ids = append(ids, api.submit(fmt.Sprintf(`{"task":"summarize","priority":%q,"input":{"text":"fleet job %d"}}`, prio, i)))
	}

	// A producer drops a job straight on the normal queue.
	normalURL := queueURL(t, p.sqs, q("normal"))
	dropped := "dropped-" + sfx
	send(t, p.sqs, normalURL, fmt.Sprintf(`{"job_id":%q,"task":"summarize","input":{"text":"dropped on the queue"}}`, dropped), nil)
	ids = append(ids, dropped)

	// An object lands in the inbox and S3 notifies the low queue.
	if _, err := p.s3.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(inbox), Key: aws.String("docs/q3.txt"),
		Body: strings.NewReader("quarterly numbers went up")}); err != nil {
		t.Fatal(err)
	}
	send(t, p.sqs, queueURL(t, p.sqs, q("low")), fmt.Sprintf(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put",`+
		`"s3":{"bucket":{"name":%q},"object":{"key":"docs/q3.txt","size":25}}}]}`, inbox), nil)

	// A poison message goes to the dead-letter queue at once, with a reason.
	send(t, p.sqs, normalURL, "this is not a job", map[string]string{"origin": "e2e"})

	// Kill a worker while jobs run: its messages reappear after the visibility timeout.
	api.eventually(20*time.Second, func() bool { return countStatus(api.statuses(), messages.StatusCompleted) >= 5 })
	if err := workerA.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	for _, id := range ids {
		api.eventually(60*time.Second, func() bool {
			code, _, _ := api.do(http.MethodGet, "/v1/jobs/"+id, "", nil)
			return code == http.StatusOK && api.job(id).Status == messages.StatusCompleted
		})
	}
	// The S3 event waits on the low queue behind the HTTP jobs: wait for its job too.
	var s3Job string
	var s3Rec messages.JobRecord
	deadline := time.Now().Add(60 * time.Second)
	for {
		all := api.statuses()
		for id, rec := range all {
			if strings.HasPrefix(id, "s3-") {
				s3Job, s3Rec = id, rec
			}
		}
		if s3Rec.Status == messages.StatusCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("S3-triggered job %q among %d jobs: %+v", s3Job, len(all), s3Rec)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range append(ids, s3Job) {
		if _, err := p.s3.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("results/" + id + ".json")}); err != nil {
			t.Fatalf("result of %s: %v", id, err)
		}
		code, _, body := api.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", nil)
		var res messages.Result
		if code != http.StatusOK || json.Unmarshal(body, &res) != nil || res.JobID != id {
			t.Fatalf("GET result of %s: %d %s", id, code, body)
		}
	}

	// The poison message waits in the dead-letter queue with its reason.
	deadURL := queueURL(t, p.sqs, q("dead"))
	var reason string
	api.eventually(20*time.Second, func() bool {
		out, err := p.sqs.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(deadURL),
			MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, VisibilityTimeout: 0})
		if err != nil {
			return false
		}
		for _, m := range out.Messages {
			if aws.ToString(m.Body) == "this is not a job" {
				if a, ok := m.MessageAttributes[messages.MetaDeadReason]; ok {
					reason = aws.ToString(a.StringValue)
				}
				return true
			}
		}
		return false
	})
	if reason == "" {
		t.Fatal("the poison message reached the dead-letter queue without a dead_reason attribute")
	}

	// Scale to zero and back: with no worker left, new jobs wait on the queue; a new worker
	// completes them.
	if err := workerB.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := workerB.cmd.Wait(); err != nil {
		t.Fatalf("worker B did not stop cleanly on SIGTERM: %v", err)
	}
	var later []string
	for i := range 5 {
		later = append(later, api.submit(fmt.Sprintf(`{"task":"summarize","input":{"text":"after scale to zero %d"}}`, i)))
	}
	for _, id := range later {
		if rec := api.job(id); rec.Status != messages.StatusQueued {
			t.Fatalf("job %s with no worker running: %+v", id, rec)
		}
	}
	f.start("worker")
	for _, id := range later {
		api.waitStatus(id, messages.StatusCompleted)
	}
}

func queueURL(t *testing.T, c *awssqs.Client, name string) string {
	t.Helper()
	out, err := c.GetQueueUrl(context.Background(), &awssqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("queue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

func send(t *testing.T, c *awssqs.Client, url, body string, attrs map[string]string) {
	t.Helper()
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}
	if len(attrs) > 0 {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{}
		for k, v := range attrs {
			in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	if _, err := c.SendMessage(context.Background(), in); err != nil {
		t.Fatalf("send to %s: %v", url, err)
	}
}
