package sqs_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infleet/infleet/adapters/sqs"
	"github.com/infleet/infleet/messages"
)

// benchFill stores n small job-like messages on a fresh queue, outside the timer.
func benchFill(b *testing.B, bundle *testBundle, n int) string {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	queue, _ := bundle.queues(b, 0)
	pub := newPublisher(b, bundle)
	batch := make([]*message.Message, 0, 500)
	for i := range n {
		m := message.NewMessage(watermill.NewUUID(), []byte(`{"job_id":"`+strconv.Itoa(i)+`","task":"summarize"}`))
		m.Metadata.Set(messages.MetaJobID, strconv.Itoa(i))
		m.Metadata.Set(messages.MetaPriority, "normal")
		batch = append(batch, m)
		if len(batch) == cap(batch) || i == n-1 {
			if err := pub.Publish(queue, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return queue
}

// benchDrained fails the benchmark unless every message of queue was deleted.
func benchDrained(b *testing.B, bundle *testBundle, queue string) {
	b.Helper()
	url, err := bundle.client.GetQueueUrl(context.Background(), &awssqs.GetQueueUrlInput{QueueName: aws.String(queue)})
	if err != nil {
		b.Fatal(err)
	}
	out, err := bundle.client.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl: url.QueueUrl,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if v, nv := out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]; v != "0" || nv != "0" {
		b.Fatalf("queue not drained: %s visible, %s in flight", v, nv)
	}
}

// BenchmarkConsume consumes and acks b.N pre-filled messages (each sub-benchmark its own
// queue, filled outside the timer) on the same emulator:
//
//   - adapter: through the Subscriber with its defaults (64 in flight, 6 pollers), each message
//     acked by its own goroutine as a router would; the timer includes Close, which sends the
//     last deletes.
//   - raw: one aws-sdk-go-v2 loop of ReceiveMessage(10) and DeleteMessageBatch.
//   - raw_x6: six such loops at once, as many as the adapter's pollers.
//
// Run with a fixed count so that every sub-benchmark drains the same number:
//
//	.ci/peers/with-aws.sh go test -run '^$' -bench BenchmarkConsume -benchtime 5000x ./adapters/sqs/
func BenchmarkConsume(b *testing.B) {
	b.Run("adapter", func(b *testing.B) {
		bundle := setup(b)
		queue := benchFill(b, bundle, b.N)
		cfg := subscriberConfig(bundle)
		cfg.VisibilityTimeout = 60 * time.Second
		sub, err := sqs.NewSubscriber(cfg)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		ch, err := sub.Subscribe(context.Background(), queue)
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			m := <-ch
			go m.Ack()
		}
		_ = sub.Close()
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
		benchDrained(b, bundle, queue)
	})
	for _, loops := range []int{1, 6} {
		name := "raw"
		if loops > 1 {
			name = "raw_x" + strconv.Itoa(loops)
		}
		b.Run(name, func(b *testing.B) {
			bundle := setup(b)
			queue := benchFill(b, bundle, b.N)
			start := time.Now()
			rawConsume(b, bundle.client, queue, b.N, loops)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
			benchDrained(b, bundle, queue)
		})
	}
}

// rawConsume receives and deletes n messages of queue with loops concurrent
// ReceiveMessage(10)/DeleteMessageBatch loops.
func rawConsume(b *testing.B, client *awssqs.Client, queue string, n, loops int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url, err := client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(queue)})
	if err != nil {
		b.Fatal(err)
	}
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	for range loops {
		wg.Go(func() {
			for left.Load() > 0 {
				out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
					QueueUrl: url.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
					MessageAttributeNames:       []string{"All"},
					MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
				})
				if err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				if len(out.Messages) == 0 {
					continue
				}
				entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
				for i, m := range out.Messages {
					entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
				}
				del, err := client.DeleteMessageBatch(context.Background(), &awssqs.DeleteMessageBatchInput{QueueUrl: url.QueueUrl, Entries: entries})
				if err != nil {
					b.Error(err)
					return
				}
				if len(del.Failed) > 0 {
					b.Errorf("delete: %d failed", len(del.Failed))
					return
				}
				if left.Add(-int64(len(out.Messages))) <= 0 {
					cancel() // the other loops' long polls have nothing left to wait for
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkPublish sends small messages 100 per Publish call (SendMessageBatch of ten, several
// at once).
func BenchmarkPublish(b *testing.B) {
	bundle := setup(b)
	queue, _ := bundle.queues(b, 0)
	pub := newPublisher(b, bundle)
	batch := make([]*message.Message, 0, 100)
	b.ResetTimer()
	for i := range b.N {
		batch = append(batch, message.NewMessage(watermill.NewUUID(), []byte("0123456789abcdef")))
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := pub.Publish(queue, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}
