// Package sns publishes infleet's job lifecycle events to an SNS topic.
package sns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// Message attribute names set on every published event, for subscription filter policies
// (e.g. {"type": ["job.failed"]} or {"tenant": ["acme"]}). An empty value is left out.
const (
	AttrType   = "type"
	AttrJobID  = "job_id"
	AttrTenant = "tenant"
	AttrStatus = "status"
	AttrTask   = "task"
)

// Config wires a Notifier. Client and TopicARN are required.
type Config struct {
	// Client is an SNS client built by the caller (region, credentials, endpoint).
	Client *awssns.Client
	// TopicARN is the topic events are published to.
	TopicARN string
	Logger   zerolog.Logger
}

// Validate reports every problem of cfg, naming the field and the fix.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("sns: Client is nil: build an SNS client first"))
	}
	if cfg.TopicARN == "" {
		errs = append(errs, errors.New("sns: TopicARN is empty: set notify.sns.topic_arn"))
	} else if !strings.HasPrefix(cfg.TopicARN, "arn:") {
		errs = append(errs, fmt.Errorf("sns: TopicARN %q is not an ARN: give the topic's ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", cfg.TopicARN))
	}
	return errors.Join(errs...)
}

// Notifier is a pipeline.Notifier (and pipeline.Checker) that publishes each event as one SNS
// message: the body is the event's JSON, and the attributes type, job_id, tenant, status and
// task carry its fields for filter policies. Safe for concurrent use.
type Notifier struct {
	cfg Config
}

var (
	_ pipeline.Notifier = (*Notifier)(nil)
	_ pipeline.Checker  = (*Notifier)(nil)
)

// New validates cfg and returns a Notifier. It does no I/O: Check finds out whether the topic
// is there.
func New(cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Notifier{cfg: cfg}, nil
}

// Notify publishes n.Event (n.CallbackURL is the webhook's business and is ignored). It
// returns when SNS has accepted the message; the SDK retries throttling and transient errors,
// and an error returned means the event was not published.
func (nt *Notifier) Notify(ctx context.Context, n pipeline.Notification) error {
	ev := n.Event
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("sns: encode event of job %s: %w", ev.JobID, err)
	}
	attrs := map[string]types.MessageAttributeValue{}
	for name, v := range map[string]string{AttrType: ev.Type, AttrJobID: ev.JobID, AttrTenant: ev.Tenant, AttrStatus: string(ev.Status), AttrTask: ev.Task} {
		if v != "" {
			attrs[name] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	out, err := nt.cfg.Client.Publish(ctx, &awssns.PublishInput{
		TopicArn:          aws.String(nt.cfg.TopicARN),
		Message:           aws.String(string(body)),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("sns: publish %s of job %s: %w", ev.Type, ev.JobID, explain(err, nt.cfg.TopicARN))
	}
	nt.cfg.Logger.Debug().Str("job_id", ev.JobID).Str("event_type", ev.Type).Str("message_id", aws.ToString(out.MessageId)).Msg("event published to SNS")
	return nil
}

// Check reports whether the topic exists and the credentials can read it (GetTopicAttributes).
func (nt *Notifier) Check(ctx context.Context) error {
	_, err := nt.cfg.Client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(nt.cfg.TopicARN)})
	if err != nil {
		return explain(err, nt.cfg.TopicARN)
	}
	return nil
}

// EnsureTopic creates the standard topic name unless it exists and returns its ARN. It is
// idempotent (CreateTopic returns the existing topic's ARN).
func EnsureTopic(ctx context.Context, client *awssns.Client, name string) (arn string, err error) {
	out, err := client.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("create SNS topic %q: %w", name, err)
	}
	return aws.ToString(out.TopicArn), nil
}

// explain turns SNS's missing-topic error into one that names the topic and the fix.
func explain(err error, topicARN string) error {
	var nf *types.NotFoundException
	var ae smithy.APIError
	if errors.As(err, &nf) || (errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NotFoundException")) {
		return fmt.Errorf("SNS topic %q does not exist: run \"infleet init\" or create it (%w)", topicARN, err)
	}
	return err
}
