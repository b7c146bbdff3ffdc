package sqs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// scanVisibility is how long a scan keeps the dead letters it read hidden; they are made
// visible again as soon as the scan ends.
const scanVisibility = 30 * time.Second

// scanWait is the long poll of a scan's receives: an empty answer after it ends the scan.
const scanWait = time.Second

// maxScan bounds the messages one scan reads.
const maxScan = 10000

// deadLetters serializes the scans and removals of dead-letter queues. It keeps no receipt
// handles between calls: once a scan makes its messages visible again their handles go stale,
// and SQS answers a delete with a stale handle with success without deleting anything.
type deadLetters struct {
	mu sync.Mutex
}

var _ pipeline.DeadLetterBox = (*Subscriber)(nil)

// ScanDeadLetters calls fn with each message kept on queue topic, oldest sent first, until fn
// returns false. It receives every message (up to 10,000) with a short visibility timeout and
// makes them all visible again when it ends, so nothing is lost and nothing is consumed; a
// consumer reading the queue at the same time may find some messages hidden for up to 30 s.
// The id passed to fn is the SQS message id. A message moved by the queue's redrive policy
// (not by infleet's dead-letter path) carries no reason: it gets messages.MetaDeadReason saying
// so. It implements pipeline.DeadLetterBox; scans of one queue are serialized.
func (s *Subscriber) ScanDeadLetters(ctx context.Context, topic string, fn func(id string, payload []byte, md map[string]string) bool) error {
	url, err := s.urls.get(ctx, topic)
	if err != nil {
		return fmt.Errorf("dead letters on %s: %w", topic, err)
	}
	s.dead.mu.Lock()
	defer s.dead.mu.Unlock()
	msgs, err := s.receiveAll(ctx, url, "")
	defer s.releaseAll(url, msgs)
	if err != nil {
		return fmt.Errorf("dead letters on %s: %w", topic, err)
	}
	for _, m := range msgs {
		msg, err := decode(m)
		if err != nil {
			s.log.Warn().Err(err).Str("topic", topic).Str("sqs_message_id", aws.ToString(m.MessageId)).Msg("skipping a dead letter that cannot be decoded")
			continue
		}
		md := map[string]string(msg.Metadata)
		delete(md, MetaReceiveCount)
		delete(md, messages.MetaDeliveryCount)
		delete(md, MetaMessageID)
		if md[messages.MetaDeadReason] == "" && md[pipeline.MetaDeadCode] == "" {
			md[messages.MetaDeadReason] = fmt.Sprintf("%s: received %d times without success; the queue's redrive policy moved it here",
				messages.ErrCodeAttemptsExceeded, max(receiveCount(m)-1, 1))
		}
		if !fn(aws.ToString(m.MessageId), msg.Payload, md) {
			return nil
		}
	}
	return nil
}

// RemoveDeadLetter deletes the message with SQS message id id from queue topic; a missing
// message is not an error. It receives the queue's messages until it finds that one, deletes
// it with that fresh receipt handle and makes the others visible again. It implements
// pipeline.DeadLetterBox.
func (s *Subscriber) RemoveDeadLetter(ctx context.Context, topic, id string) error {
	url, err := s.urls.get(ctx, topic)
	if err != nil {
		return fmt.Errorf("remove dead letter %s on %s: %w", id, topic, err)
	}
	s.dead.mu.Lock()
	defer s.dead.mu.Unlock()
	msgs, err := s.receiveAll(ctx, url, id)
	var found *types.Message
	for i, m := range msgs {
		if aws.ToString(m.MessageId) == id {
			found = &m // a copy: slices.Delete below shifts and clears msgs' elements
			msgs = slices.Delete(msgs, i, i+1)
			break
		}
	}
	defer s.releaseAll(url, msgs)
	if err != nil {
		return fmt.Errorf("remove dead letter %s on %s: %w", id, topic, err)
	}
	if found == nil {
		return nil
	}
	if _, err := s.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: found.ReceiptHandle}); err != nil {
		s.releaseAll(url, []types.Message{*found})
		return fmt.Errorf("remove dead letter %s on %s: %w", id, topic, err)
	}
	return nil
}

// receiveAll receives the messages of queue url, hiding them for scanVisibility, until an
// empty answer, maxScan messages, or the message with id until. They are returned oldest sent
// first, each once (with its latest receipt handle).
func (s *Subscriber) receiveAll(ctx context.Context, url, until string) ([]types.Message, error) {
	seen := map[string]int{}
	var out []types.Message
	for len(out) < maxScan {
		got, err := s.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(url),
			MaxNumberOfMessages:         maxBatchEntries,
			WaitTimeSeconds:             int32(scanWait / time.Second),
			VisibilityTimeout:           int32(scanVisibility / time.Second),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return out, err
		}
		if len(got.Messages) == 0 {
			break
		}
		fresh := 0
		for _, m := range got.Messages {
			id := aws.ToString(m.MessageId)
			if i, ok := seen[id]; ok {
				out[i] = m // hidden time ran out during a long scan: keep the newest handle
				continue
			}
			seen[id] = len(out)
			out = append(out, m)
			fresh++
		}
		if _, ok := seen[until]; ok && until != "" {
			break
		}
		if fresh == 0 {
			break // everything came round again
		}
	}
	slices.SortStableFunc(out, func(a, b types.Message) int {
		return cmp.Or(cmp.Compare(sentAt(a), sentAt(b)), cmp.Compare(aws.ToString(a.MessageId), aws.ToString(b.MessageId)))
	})
	return out, nil
}

// releaseTries bounds the calls releaseAll makes for one batch of ten.
const releaseTries = 3

// releaseAll makes msgs visible again, ten per call. A call that fails, or entries that
// fail, are sent again (up to releaseTries calls a batch): a message left hidden would be
// missing from the next scan, a redrive among them, for scanVisibility.
func (s *Subscriber) releaseAll(url string, msgs []types.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), maxBatchEntries)
		batch := make([]batchEntry, n)
		for i, m := range msgs[:n] {
			batch[i] = batchEntry{id: strconv.Itoa(i), receipt: aws.ToString(m.ReceiptHandle)}
		}
		msgs = msgs[n:]
		var err error
		for try := 1; len(batch) > 0; try++ {
			var failed []types.BatchResultErrorEntry
			failed, err = s.changeVisibility(ctx, url, batch)
			if err == nil {
				batch = slices.DeleteFunc(batch, func(e batchEntry) bool {
					return !slices.ContainsFunc(failed, func(f types.BatchResultErrorEntry) bool {
						return aws.ToString(f.Id) == e.id && !f.SenderFault
					})
				})
			}
			if len(batch) == 0 || try == releaseTries || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Duration(try) * 100 * time.Millisecond)
		}
		if len(batch) > 0 {
			s.log.Warn().Err(err).Int("failed", len(batch)).Msg("releasing scanned dead letters failed; they become visible again within 30 s")
		}
	}
}

// sentAt is the message's SentTimestamp in milliseconds, 0 when unknown.
func sentAt(m types.Message) int64 {
	n, _ := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
	return n
}
