package sns_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/infleet/infleet/adapters/sns"
	"github.com/infleet/infleet/internal/awstest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// bundle is a fresh topic with a fresh SQS queue subscribed to it.
type bundle struct {
	sns      *awssns.Client
	sqs      *awssqs.Client
	topicARN string
	queueURL string
}

// setup returns a topic on INFLEET_TEST_AWS_ENDPOINT with a queue subscribed (raw message
// delivery as given), or skips the test when the variable is unset.
func setup(t *testing.T, raw bool) *bundle {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	b := &bundle{
		sns: awssns.New(awssns.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds}),
		sqs: awssqs.New(awssqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds}),
	}
	ctx := ctxT(t)
	suffix := uuid.NewString()[:8]
	arn, err := sns.EnsureTopic(ctx, b.sns, "infleet-events-"+suffix)
	if err != nil {
		t.Fatal(err)
	}
	b.topicARN = arn
	q, err := b.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("infleet-events-" + suffix)})
	if err != nil {
		t.Fatal(err)
	}
	b.queueURL = aws.ToString(q.QueueUrl)
	qa, err := b.sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.sns.Subscribe(ctx, &awssns.SubscribeInput{
		TopicArn:   aws.String(arn),
		Protocol:   aws.String("sqs"),
		Endpoint:   aws.String(qa.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": strconv.FormatBool(raw)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (b *bundle) notifier(t *testing.T) *sns.Notifier {
	t.Helper()
	n, err := sns.New(sns.Config{Client: b.sns, TopicARN: b.topicARN})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// receive waits for one message on the queue.
func (b *bundle) receive(t *testing.T) sqstypes.Message {
	t.Helper()
	ctx := ctxT(t)
	for ctx.Err() == nil {
		out, err := b.sqs.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(b.queueURL), WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			return out.Messages[0]
		}
	}
	t.Fatal("no message reached the subscribed queue within 30s")
	return sqstypes.Message{}
}

func event() messages.Event {
	return messages.Event{
		Type: messages.EventFailed, JobID: "job-" + uuid.NewString()[:8], Status: messages.StatusFailed, Task: "summarize",
		Tenant: "acme", Error: &messages.JobError{Code: messages.ErrCodeModelError, Message: "down"},
		OccurredAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
	}
}

func decodeEvent(t *testing.T, body string) messages.Event {
	t.Helper()
	var got messages.Event
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q is not an event: %v", body, err)
	}
	return got
}

func sameEvent(t *testing.T, got, want messages.Event) {
	t.Helper()
	if got.JobID != want.JobID || got.Type != want.Type || got.Status != want.Status || got.Tenant != want.Tenant ||
		got.Error == nil || got.Error.Code != want.Error.Code || !got.OccurredAt.Equal(want.OccurredAt) {
		t.Fatalf("event read back %+v, want %+v", got, want)
	}
}

func TestEventReachesARawSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	want := event()
	if err := b.notifier(t).Notify(ctxT(t), pipeline.Notification{Event: want, CallbackURL: "https://ignored.example"}); err != nil {
		t.Fatal(err)
	}
	msg := b.receive(t)
	sameEvent(t, decodeEvent(t, aws.ToString(msg.Body)), want)
	for name, v := range map[string]string{"type": want.Type, "job_id": want.JobID, "tenant": "acme", "status": "FAILED", "task": "summarize"} {
		if got := aws.ToString(msg.MessageAttributes[name].StringValue); got != v {
			t.Errorf("SQS message attribute %s = %q, want %q", name, got, v)
		}
	}
}

func TestEventReachesAnEnvelopedSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	want := event()
	want.Tenant = "" // an empty attribute is left out rather than refused
	if err := b.notifier(t).Notify(ctxT(t), pipeline.Notification{Event: want}); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Type              string
		TopicArn          string
		Message           string
		MessageAttributes map[string]struct{ Type, Value string }
	}
	body := aws.ToString(b.receive(t).Body)
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("body %q is not an SNS envelope: %v", body, err)
	}
	if env.Type != "Notification" || env.TopicArn != b.topicARN {
		t.Fatalf("envelope %+v is not a notification of %s", env, b.topicARN)
	}
	sameEvent(t, decodeEvent(t, env.Message), want)
	if got := env.MessageAttributes["type"]; got.Type != "String" || got.Value != want.Type {
		t.Errorf("envelope attribute type = %+v, want String %s", got, want.Type)
	}
	if _, ok := env.MessageAttributes["tenant"]; ok {
		t.Errorf("an empty tenant was sent as an attribute: %+v", env.MessageAttributes)
	}
}

func TestCheckAndMissingTopic(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	ctx := ctxT(t)
	if err := b.notifier(t).Check(ctx); err != nil {
		t.Fatalf("check of an existing topic: %v", err)
	}
	again, err := sns.EnsureTopic(ctx, b.sns, b.topicARN[strings.LastIndex(b.topicARN, ":")+1:])
	if err != nil || again != b.topicARN {
		t.Fatalf("ensure twice: %s, %v; want %s", again, err, b.topicARN)
	}
	missing := b.topicARN + "-gone"
	n, err := sns.New(sns.Config{Client: b.sns, TopicARN: missing})
	if err != nil {
		t.Fatal(err)
	}
	want := `SNS topic "` + missing + `" does not exist: run "infleet init" or create it`
	if err := n.Check(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("check of a missing topic: %v, want it to say %q", err, want)
	}
	if err := n.Notify(ctx, pipeline.Notification{Event: event()}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("notify to a missing topic: %v, want it to say %q", err, want)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	_, err := sns.New(sns.Config{TopicARN: "infleet-events"})
	for _, want := range []string{"Client is nil", "is not an ARN"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error %v does not say %q", err, want)
		}
	}
}
