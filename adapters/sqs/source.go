package sqs

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/internal/delivery"
)

// source receives one subscription's messages for the delivery engine, whose Pollers fetch
// loops long-poll at once. Acks and nacks go through two batchers, sent before the
// subscription's channel closes.
type source struct {
	s     *Subscriber
	topic string
	url   string
	log   zerolog.Logger

	deleter *batcher
	changer *batcher
}

var (
	_ delivery.Source   = (*source)(nil)
	_ delivery.Extender = (*source)(nil)
)

// Fetch long-polls for up to n messages (at most ten) and delivers each it can decode.
func (src *source) Fetch(ctx context.Context, n int, deliver func(delivery.Delivery)) error {
	cfg := src.s.cfg
	out, err := src.s.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(src.url),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(cfg.WaitTime / time.Second),
		VisibilityTimeout:           int32(cfg.VisibilityTimeout / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		if isMissingQueue(err) {
			return fmt.Errorf("SQS queue %s does not exist (run \"infleet init\" or create it): %w", src.topic, err)
		}
		return err
	}
	for _, m := range out.Messages {
		msg, err := decode(m)
		if err != nil {
			// The message can never be read: it comes back after its visibility timeout, not
			// at once, until the queue's redrive policy moves it to the dead-letter queue.
			src.log.Error().Err(err).Str("sqs_message_id", aws.ToString(m.MessageId)).Int("receive_count", receiveCount(m)).
				Msg("cannot decode SQS message; leaving it for the queue's redrive policy to dead-letter")
			continue
		}
		deliver(&sqsDelivery{src: src, receipt: aws.ToString(m.ReceiptHandle), msg: msg})
	}
	return nil
}

// Extend sets the visibility timeout of ds (at most ten) to the full timeout again.
func (src *source) Extend(ctx context.Context, ds []delivery.Delivery) []bool {
	vt := int32(src.s.cfg.VisibilityTimeout / time.Second)
	batch := make([]batchEntry, len(ds))
	for i, d := range ds {
		batch[i] = batchEntry{id: strconv.Itoa(i), receipt: d.(*sqsDelivery).receipt, visibility: vt}
	}
	failed, err := src.s.changeVisibility(ctx, src.url, batch)
	if err != nil {
		src.log.Warn().Err(err).Int("messages", len(batch)).Msg("extending the visibility of held messages failed; they may be delivered again while they run")
		return nil
	}
	renewed := make([]bool, len(ds))
	for i := range renewed {
		renewed[i] = true
	}
	for _, f := range failed {
		if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(renewed) {
			renewed[i] = false
		}
		src.log.Warn().Str("code", aws.ToString(f.Code)).Str("reason", aws.ToString(f.Message)).
			Msg("extending the visibility of a held message failed; it may be delivered again while it runs")
	}
	return renewed
}

// finish sends the pending acks and nacks.
func (src *source) finish() {
	src.deleter.close()
	src.changer.close()
}

// sqsDelivery is one received message.
type sqsDelivery struct {
	src     *source
	receipt string
	msg     *message.Message
}

// Message returns the decoded message; it is handed out once (a nack goes back to the
// broker).
func (d *sqsDelivery) Message() *message.Message { return d.msg }

// Ack deletes the message, in a batch.
func (d *sqsDelivery) Ack() { d.src.deleter.add(d.receipt, 0) }

// Nack makes the message visible again after delay, in whole seconds rounded up and capped
// at MaxNackDelay.
func (d *sqsDelivery) Nack(delay time.Duration) bool {
	d.src.changer.add(d.receipt, int32(math.Ceil(min(delay, MaxNackDelay).Seconds())))
	return false
}

// Release makes the message visible again at once.
func (d *sqsDelivery) Release() { d.src.changer.add(d.receipt, 0) }
