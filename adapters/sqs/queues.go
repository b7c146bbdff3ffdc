package sqs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// DefaultMaxReceiveCount is how many times a message may be received before the queue's
// redrive policy moves it to the dead-letter queue.
const DefaultMaxReceiveCount = 10

// deadLetterRetention keeps dead letters for SQS's maximum, 14 days.
const deadLetterRetention = 14 * 24 * time.Hour

// QueueSpec describes the queues EnsureQueues creates.
type QueueSpec struct {
	// Queues are the work queues' names (one per priority).
	Queues []string
	// DeadLetterQueue is the redrive target of every queue in Queues; empty means no redrive.
	DeadLetterQueue string
	// MaxReceiveCount is how many receives a message gets before SQS moves it to
	// DeadLetterQueue (default DefaultMaxReceiveCount).
	MaxReceiveCount int
	// VisibilityTimeout is the queues' default visibility timeout, whole seconds (default: left
	// as SQS sets it, 30 s). The Subscriber sets its own on every receive.
	VisibilityTimeout time.Duration
}

// EnsureQueues creates the dead-letter queue and every queue of spec that does not exist, and
// sets on each work queue the redrive policy to the dead-letter queue and the visibility
// timeout, so that a message that keeps failing, however it fails (a crash loop included),
// ends in the dead-letter queue. Existing queues get the same attributes set, so it is
// idempotent and running it again after a config change applies the change.
func EnsureQueues(ctx context.Context, client *sqs.Client, spec QueueSpec) error {
	if client == nil {
		return errors.New("sqs: EnsureQueues needs a client")
	}
	redrive := ""
	if spec.DeadLetterQueue != "" {
		url, err := ensureQueue(ctx, client, spec.DeadLetterQueue, map[string]string{
			string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(deadLetterRetention / time.Second)),
		})
		if err != nil {
			return err
		}
		out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(url),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
		})
		if err != nil {
			return fmt.Errorf("read the ARN of SQS queue %q: %w", spec.DeadLetterQueue, err)
		}
		policy, _ := json.Marshal(map[string]string{
			"deadLetterTargetArn": out.Attributes[string(types.QueueAttributeNameQueueArn)],
			"maxReceiveCount":     strconv.Itoa(cmp.Or(spec.MaxReceiveCount, DefaultMaxReceiveCount)),
		})
		redrive = string(policy)
	}
	attrs := map[string]string{}
	if redrive != "" {
		attrs[string(types.QueueAttributeNameRedrivePolicy)] = redrive
	}
	if spec.VisibilityTimeout > 0 {
		attrs[string(types.QueueAttributeNameVisibilityTimeout)] = strconv.Itoa(int(max(spec.VisibilityTimeout.Round(time.Second), time.Second) / time.Second))
	}
	for _, name := range spec.Queues {
		if _, err := ensureQueue(ctx, client, name, attrs); err != nil {
			return err
		}
	}
	return nil
}

// ensureQueue creates queue name with attrs, or sets attrs on it when it exists, and returns
// its URL.
func ensureQueue(ctx context.Context, client *sqs.Client, name string, attrs map[string]string) (string, error) {
	got, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	switch {
	case err == nil:
		if len(attrs) > 0 {
			if _, err := client.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: got.QueueUrl, Attributes: attrs}); err != nil {
				return "", fmt.Errorf("set the attributes of SQS queue %q: %w", name, err)
			}
		}
		return aws.ToString(got.QueueUrl), nil
	case !isMissingQueue(err):
		return "", fmt.Errorf("look up SQS queue %q: %w", name, err)
	}
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", fmt.Errorf("create SQS queue %q: %w", name, err)
	}
	return aws.ToString(created.QueueUrl), nil
}

// CheckQueues returns an error naming every queue of names that does not exist, or the first
// other failure (no credentials, no network). It is what start-up and /readyz run.
func CheckQueues(ctx context.Context, client *sqs.Client, names ...string) error {
	if client == nil {
		return errors.New("sqs: CheckQueues needs a client")
	}
	var missing []string
	for _, name := range names {
		_, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		switch {
		case err == nil:
		case isMissingQueue(err):
			missing = append(missing, strconv.Quote(name))
		default:
			return fmt.Errorf("look up SQS queue %q: %w", name, err)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("SQS queue %s does not exist: run \"infleet init\" or create it", missing[0])
	}
	return fmt.Errorf("SQS queues %s do not exist: run \"infleet init\" or create them", strings.Join(missing, ", "))
}

// missingQueueError says that topic's queue does not exist and how to fix it.
func missingQueueError(topic string, err error) error {
	return fmt.Errorf("SQS queue %q does not exist: run \"infleet init\" or create it (%w)", topic, err)
}

// isMissingQueue reports whether err says the queue does not exist, in any of the spellings
// SQS and its emulators use.
func isMissingQueue(err error) bool {
	var dne *types.QueueDoesNotExist
	if errors.As(err, &dne) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue":
			return true
		}
	}
	return false
}

// urls resolves queue names to URLs once and remembers them. Safe for concurrent use.
type urls struct {
	client *sqs.Client
	mu     sync.Mutex
	byName map[string]string
}

func newURLs(client *sqs.Client) *urls { return &urls{client: client, byName: map[string]string{}} }

// get returns the URL of queue topic, asking SQS the first time.
func (u *urls) get(ctx context.Context, topic string) (string, error) {
	u.mu.Lock()
	url, ok := u.byName[topic]
	u.mu.Unlock()
	if ok {
		return url, nil
	}
	out, err := u.client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(topic)})
	if err != nil {
		if isMissingQueue(err) {
			return "", missingQueueError(topic, err)
		}
		return "", fmt.Errorf("look up SQS queue %q: %w", topic, err)
	}
	url = aws.ToString(out.QueueUrl)
	u.mu.Lock()
	u.byName[topic] = url
	u.mu.Unlock()
	return url, nil
}

// forget drops topic's URL, after SQS said the queue is gone.
func (u *urls) forget(topic string) {
	u.mu.Lock()
	delete(u.byName, topic)
	u.mu.Unlock()
}

// names returns the names resolved so far.
func (u *urls) names() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]string, 0, len(u.byName))
	for n := range u.byName {
		out = append(out, n)
	}
	return out
}
