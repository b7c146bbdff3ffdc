package sqs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"
)

// DefaultPublishTimeout bounds one Publish call, retries included.
const DefaultPublishTimeout = 30 * time.Second

// Batch limits of SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch.
const (
	maxBatchEntries = 10
	maxBatchBytes   = 256 << 10
)

// publishConcurrency is how many SendMessageBatch calls one Publish call keeps in flight.
const publishConcurrency = 8

// maxEntryAttempts bounds how often a failed batch entry is sent again.
const maxEntryAttempts = 5

// ErrPublisherClosed is returned by Publish after Close.
var ErrPublisherClosed = errors.New("sqs publisher is closed (create a new one)")

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Client is the SQS client to send with (required); the caller builds it with the region,
	// credentials and endpoint.
	Client *sqs.Client
	// Logger receives the publisher's log lines; the zero value discards them.
	Logger zerolog.Logger
}

// Validate reports every problem in cfg, each naming the field and the fix.
func (cfg PublisherConfig) Validate() error {
	if cfg.Client == nil {
		return errors.New("sqs publisher: Client is nil (build one with sqs.NewFromConfig)")
	}
	return nil
}

// Publisher is a Watermill message.Publisher on SQS standard queues: a topic is a queue name.
// Publish sends with SendMessageBatch and returns nil only when SQS has stored every message.
// Publish is safe for concurrent use.
type Publisher struct {
	client *sqs.Client
	urls   *urls
	log    zerolog.Logger

	mu     sync.RWMutex // held for reading by each Publish, for writing by Close
	closed bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher on cfg.Client.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{client: cfg.Client, urls: newURLs(cfg.Client), log: cfg.Logger}, nil
}

// Publish sends msgs to queue topic in batches of up to ten messages and 256 KiB, several
// batches at once, retrying the entries SQS failed, and returns an error if any message was
// not stored (some others may have been: publishing them again may duplicate them, which
// at-least-once consumers absorb). The queue must exist (see EnsureQueues); its URL is looked
// up once. Metadata travels as message attributes (see encode); messages.MetaNackDelay and the
// Subscriber's receive metadata are not sent.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPublisherClosed
	}
	if len(msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
	defer cancel()
	url, err := p.urls.get(ctx, topic)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}

	var batches [][]sendEntry
	var cur []sendEntry
	curBytes := 0
	for i, msg := range msgs {
		e, err := encode(msg)
		if err != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		if len(cur) == maxBatchEntries || curBytes+e.size > maxBatchBytes {
			batches = append(batches, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, sendEntry{index: i, uuid: msg.UUID, enc: e})
		curBytes += e.size
	}
	batches = append(batches, cur)

	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, publishConcurrency)
		emu  sync.Mutex
		errs []error
	)
	for _, b := range batches {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := p.sendBatch(ctx, url, b); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if isMissingQueue(err) {
			p.urls.forget(topic)
			return fmt.Errorf("publish to %s: %w", topic, missingQueueError(topic, err))
		}
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// sendEntry is one message of a batch; index is its place in Publish's arguments.
type sendEntry struct {
	index int
	uuid  string
	enc   encoded
}

// sendBatch sends one batch and sends again the entries SQS failed, until all are stored,
// an entry fails for a reason a retry cannot fix, or the attempts run out.
func (p *Publisher) sendBatch(ctx context.Context, url string, batch []sendEntry) error {
	pending := batch
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		entries := make([]types.SendMessageBatchRequestEntry, len(pending))
		byID := make(map[string]sendEntry, len(pending))
		for i, e := range pending {
			id := strconv.Itoa(e.index)
			byID[id] = e
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:                aws.String(id),
				MessageBody:       aws.String(e.enc.body),
				MessageAttributes: e.enc.attrs,
			}
		}
		out, err := p.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		var failed []sendEntry
		var lastErr error
		switch {
		case err != nil:
			if isMissingQueue(err) || ctx.Err() != nil || attempt >= maxEntryAttempts {
				return fmt.Errorf("send %d messages: %w", len(pending), err)
			}
			failed, lastErr = pending, err
		default:
			for _, f := range out.Failed {
				e, ok := byID[aws.ToString(f.Id)]
				if !ok {
					continue
				}
				err := fmt.Errorf("message %s: %s: %s", e.uuid, aws.ToString(f.Code), aws.ToString(f.Message))
				if f.SenderFault || attempt >= maxEntryAttempts {
					return fmt.Errorf("SQS refused %d of %d messages (first: %w)", len(out.Failed), len(pending), err)
				}
				failed, lastErr = append(failed, e), err
			}
		}
		if len(failed) == 0 {
			return nil
		}
		p.log.Warn().Err(lastErr).Int("failed", len(failed)).Int("attempt", attempt).Msg("sending messages to SQS failed; retrying the failed ones")
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("send %d messages: %w (last error: %w)", len(failed), ctx.Err(), lastErr)
		}
		wait = min(2*wait, time.Second)
		pending = failed
	}
}

// Close makes later Publish calls fail with ErrPublisherClosed; it waits for the Publish calls
// under way. It does not close the client, and it is idempotent.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}
