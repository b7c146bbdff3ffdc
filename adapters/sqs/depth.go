package sqs

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infleet/infleet/pipeline"
)

var (
	_ pipeline.DepthReporter = (*Subscriber)(nil)
	_ pipeline.Checker       = (*Subscriber)(nil)
)

// QueueDepth returns how many messages wait on queue topic to be received
// (ApproximateNumberOfMessages: not counting messages held by consumers or delayed). It
// implements pipeline.DepthReporter and is safe for concurrent use.
func (s *Subscriber) QueueDepth(ctx context.Context, topic string) (int64, error) {
	url, err := s.urls.get(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: %w", topic, err)
	}
	out, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		if isMissingQueue(err) {
			s.urls.forget(topic)
			return 0, fmt.Errorf("queue depth of %s: %w", topic, missingQueueError(topic, err))
		}
		return 0, fmt.Errorf("queue depth of %s: %w", topic, err)
	}
	v := out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)]
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: SQS answered %q, not a number", topic, v)
	}
	return n, nil
}

// Check reports whether SQS answers with the subscriber's credentials and every queue it has
// used so far still exists (before the first Subscribe: whether SQS answers at all). It
// implements pipeline.Checker for /readyz and is safe for concurrent use.
func (s *Subscriber) Check(ctx context.Context) error {
	names := s.urls.names()
	if len(names) > 0 {
		return CheckQueues(ctx, s.client, names...)
	}
	if _, err := s.client.ListQueues(ctx, &sqs.ListQueuesInput{MaxResults: aws.Int32(1)}); err != nil {
		return fmt.Errorf("SQS does not answer (check the endpoint, region and credentials): %w", err)
	}
	return nil
}
