package sqs

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"
)

// batchLinger is how long a batcher waits for more entries before it sends a batch of fewer
// than ten: short enough that no job notices, long enough to fill batches under load.
const batchLinger = 5 * time.Millisecond

// batchConcurrency is how many batch calls one batcher keeps in flight.
const batchConcurrency = 8

// batchTimeout bounds one batch call with its retries.
const batchTimeout = 30 * time.Second

// batchEntry is one receipt handle to delete or to change the visibility of.
type batchEntry struct {
	id         string // unique within its batch
	receipt    string
	visibility int32 // seconds, for visibility changes
}

// batchFunc sends one batch and returns the entries SQS failed.
type batchFunc func(ctx context.Context, b []batchEntry) ([]types.BatchResultErrorEntry, error)

// batcher gathers receipt handles into batch calls of up to ten, sent after batchLinger or
// once ten are waiting, several at once, retrying the entries that failed for a reason a
// retry can fix. add is safe for concurrent use until close.
type batcher struct {
	log  zerolog.Logger
	what string
	send batchFunc

	in       chan batchEntry
	done     chan struct{}
	inflight sync.WaitGroup
	sem      chan struct{}
}

func newBatcher(log zerolog.Logger, what string, send batchFunc) *batcher {
	b := &batcher{
		log:  log,
		what: what,
		send: send,
		in:   make(chan batchEntry, 4*maxBatchEntries),
		done: make(chan struct{}),
		sem:  make(chan struct{}, batchConcurrency),
	}
	go b.run()
	return b
}

// add queues receipt for the next batch.
func (b *batcher) add(receipt string, visibility int32) {
	b.in <- batchEntry{receipt: receipt, visibility: visibility}
}

// close sends what is queued and waits for every call under way. No add may follow it.
func (b *batcher) close() {
	close(b.in)
	<-b.done
	b.inflight.Wait()
}

func (b *batcher) run() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first, ok := <-b.in
		if !ok {
			return
		}
		batch := []batchEntry{first}
		open := true
		timer.Reset(batchLinger)
	gather:
		for len(batch) < maxBatchEntries {
			select {
			case e, ok := <-b.in:
				if !ok {
					open = false
					break gather
				}
				batch = append(batch, e)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		for i := range batch {
			batch[i].id = strconv.Itoa(i)
		}
		b.sem <- struct{}{}
		b.inflight.Add(1)
		go func() {
			defer b.inflight.Done()
			defer func() { <-b.sem }()
			b.flush(batch)
		}()
		if !open {
			return
		}
	}
}

// flush sends batch, and again the entries that failed for a reason a retry can fix.
func (b *batcher) flush(batch []batchEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	wait := 50 * time.Millisecond
	for attempt := 1; len(batch) > 0; attempt++ {
		failed, err := b.send(ctx, batch)
		var retry []batchEntry
		if err != nil {
			retry = batch
			if isMissingQueue(err) {
				retry = nil
			}
			b.log.Warn().Err(err).Str("op", b.what).Int("messages", len(batch)).Int("attempt", attempt).
				Msg("SQS batch call failed; the messages are delivered again if it is not retried in time")
		}
		byID := make(map[string]batchEntry, len(batch))
		for _, e := range batch {
			byID[e.id] = e
		}
		for _, f := range failed {
			e, ok := byID[aws.ToString(f.Id)]
			if !ok {
				continue
			}
			code := aws.ToString(f.Code)
			// A stale receipt handle (the message was received again, or is already gone)
			// is not worth a retry.
			if f.SenderFault || code == "ReceiptHandleIsInvalid" || code == "MessageNotInflight" {
				b.log.Debug().Str("op", b.what).Str("code", code).Str("reason", aws.ToString(f.Message)).Msg("SQS refused a batch entry")
				continue
			}
			retry = append(retry, e)
		}
		if len(retry) == 0 || attempt >= maxEntryAttempts {
			if len(retry) > 0 {
				b.log.Warn().Str("op", b.what).Int("messages", len(retry)).
					Msg("giving up on SQS batch entries; their messages are delivered again when their visibility timeout runs out")
			}
			return
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, time.Second)
		batch = retry
	}
}
