// Package eventbridge puts infleet's job lifecycle events on an EventBridge bus, batching
// PutEvents calls, and starts and follows replays of an EventBridge archive.
package eventbridge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/cenkalti/backoff/v5"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// Defaults of Config, and the limits of one PutEvents call.
const (
	DefaultSource        = "infleet"
	DefaultLinger        = 5 * time.Millisecond
	DefaultMaxAttempts   = 5
	DefaultRetryInterval = 100 * time.Millisecond
	// MaxBatchEntries and MaxBatchBytes are PutEvents' limits per call.
	MaxBatchEntries = 10
	MaxBatchBytes   = 256 << 10
	// maxInFlight bounds the PutEvents calls (with their retries) running at once.
	maxInFlight     = 8
	maxRetryBackoff = 5 * time.Second
)

// ErrClosed is returned by Notify after Close.
var ErrClosed = errors.New("eventbridge notifier is closed")

// Config wires a Notifier. Client and Bus are required.
type Config struct {
	// Client is an EventBridge client built by the caller (region, credentials, endpoint).
	Client *awseb.Client
	// Bus is the event bus name or ARN.
	Bus string
	// Source is the events' source. Default "infleet".
	Source string
	// Linger is how long the first event of a batch waits for others to join it. Default 5ms.
	Linger time.Duration
	// MaxAttempts bounds the PutEvents attempts of one entry (the first included) when the
	// bus fails it. Default 5.
	MaxAttempts int
	// RetryInterval is the first wait before re-sending failed entries, growing 1.5 times per
	// attempt with jitter up to 5s. Default 100ms.
	RetryInterval time.Duration
	Logger        zerolog.Logger
}

// Validate reports every problem of cfg, naming the field and the fix.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("eventbridge: Client is nil: build an EventBridge client first"))
	}
	if cfg.Bus == "" {
		errs = append(errs, errors.New("eventbridge: Bus is empty: set notify.eventbridge.bus"))
	}
	if cfg.Linger < 0 || cfg.MaxAttempts < 0 || cfg.RetryInterval < 0 {
		errs = append(errs, errors.New("eventbridge: Linger, MaxAttempts and RetryInterval cannot be negative"))
	}
	return errors.Join(errs...)
}

// Notifier is a pipeline.Notifier that puts each event on the bus with detail-type = the
// event type and detail = the event JSON. Concurrent Notify calls are batched into PutEvents
// calls of up to 10 entries and 256 KiB; when the bus fails some entries of a call, only those
// are sent again, with backoff, and each caller gets its own entry's outcome. Safe for
// concurrent use; Close flushes what is queued.
type Notifier struct {
	cfg   Config
	in    chan *request
	quit  chan struct{}
	done  chan struct{}
	close sync.Once
	sends sync.WaitGroup
	slots chan struct{}
	// queued counts the requests the batcher holds, not yet handed to a send (for tests).
	queued atomic.Int64
}

var (
	_ pipeline.Notifier = (*Notifier)(nil)
	_ pipeline.Checker  = (*Notifier)(nil)
)

// request is one event waiting to be put, and where its outcome goes.
type request struct {
	entry  types.PutEventsRequestEntry
	size   int
	jobID  string
	result chan error
}

// New validates cfg, applies its defaults and starts the batcher. It does no I/O.
func New(cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Source = cmp.Or(cfg.Source, DefaultSource)
	cfg.Linger = cmp.Or(cfg.Linger, DefaultLinger)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
	cfg.RetryInterval = cmp.Or(cfg.RetryInterval, DefaultRetryInterval)
	n := &Notifier{cfg: cfg, in: make(chan *request), quit: make(chan struct{}), done: make(chan struct{}),
		slots: make(chan struct{}, maxInFlight)}
	go n.batch()
	return n, nil
}

// Notify puts n.Event on the bus (n.CallbackURL is the webhook's business). It returns nil
// once the bus has accepted the event, or an error once it has failed for good (refused, or
// still failing after MaxAttempts). When ctx ends first Notify returns ctx's error, and the
// event may still be put.
func (nt *Notifier) Notify(ctx context.Context, n pipeline.Notification) error {
	ev := n.Event
	detail, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("eventbridge: encode event of job %s: %w", ev.JobID, err)
	}
	at := ev.OccurredAt
	if at.IsZero() {
		at = time.Now()
	}
	r := &request{
		entry: types.PutEventsRequestEntry{
			EventBusName: aws.String(nt.cfg.Bus),
			Source:       aws.String(nt.cfg.Source),
			DetailType:   aws.String(ev.Type),
			Detail:       aws.String(string(detail)),
			Time:         aws.Time(at),
		},
		// EventBridge counts Time as 14 bytes, plus the strings' UTF-8 bytes.
		size:   14 + len(nt.cfg.Source) + len(ev.Type) + len(detail),
		jobID:  ev.JobID,
		result: make(chan error, 1),
	}
	if r.size > MaxBatchBytes {
		return fmt.Errorf("eventbridge: event of job %s is %d bytes, over EventBridge's 256 KiB entry limit", ev.JobID, r.size)
	}
	select {
	case nt.in <- r:
	case <-nt.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batch collects requests into batches: a batch is sent when it holds MaxBatchEntries, when
// the next entry would take it over MaxBatchBytes, or Linger after its first entry.
func (nt *Notifier) batch() {
	defer close(nt.done)
	var (
		pending []*request
		size    int
		timer   *time.Timer
		fire    <-chan time.Time
	)
	flush := func() {
		if timer != nil {
			timer.Stop()
			fire = nil
		}
		if len(pending) == 0 {
			return
		}
		batch := pending
		pending, size = nil, 0
		nt.queued.Add(-int64(len(batch)))
		nt.slots <- struct{}{}
		nt.sends.Go(func() {
			defer func() { <-nt.slots }()
			nt.send(batch)
		})
	}
	for {
		select {
		case r := <-nt.in:
			if size+r.size > MaxBatchBytes {
				flush()
			}
			pending = append(pending, r)
			size += r.size
			nt.queued.Add(1)
			if len(pending) >= MaxBatchEntries {
				flush()
			} else if len(pending) == 1 {
				timer = time.NewTimer(nt.cfg.Linger)
				fire = timer.C
			}
		case <-fire:
			fire = nil
			flush()
		case <-nt.quit:
			flush()
			nt.sends.Wait()
			return
		}
	}
}

// send puts batch, re-sending the entries the bus failed until each is accepted, refused for
// good or out of attempts, and hands every request its outcome.
func (nt *Notifier) send(batch []*request) {
	bo := &backoff.ExponentialBackOff{InitialInterval: nt.cfg.RetryInterval, RandomizationFactor: 0.5, Multiplier: 1.5, MaxInterval: maxRetryBackoff}
	bo.Reset()
	for attempt := 1; ; attempt++ {
		entries := make([]types.PutEventsRequestEntry, len(batch))
		for i, r := range batch {
			entries[i] = r.entry
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := nt.cfg.Client.PutEvents(ctx, &awseb.PutEventsInput{Entries: entries})
		cancel()
		if err != nil {
			// The SDK has already retried what it could (throttling, 5xx, connection errors).
			err = fmt.Errorf("eventbridge: put events on bus %q: %w", nt.cfg.Bus, err)
			for _, r := range batch {
				r.result <- err
			}
			nt.cfg.Logger.Error().Err(err).Int("events", len(batch)).Msg("events not put on the bus")
			return
		}
		var failed []*request
		for i, r := range batch {
			if i >= len(out.Entries) {
				failed = append(failed, r) // a short answer: treat as failed
				continue
			}
			e := out.Entries[i]
			code := aws.ToString(e.ErrorCode)
			switch {
			case code == "":
				r.result <- nil
			case attempt >= nt.cfg.MaxAttempts || !retryable(code):
				err := fmt.Errorf("eventbridge: bus %q refused the event of job %s after %d attempt(s): %s: %s",
					nt.cfg.Bus, r.jobID, attempt, code, aws.ToString(e.ErrorMessage))
				nt.cfg.Logger.Error().Str("job_id", r.jobID).Str("error_code", code).Int("attempts", attempt).Msg("event not put on the bus")
				r.result <- err
			default:
				failed = append(failed, r)
			}
		}
		if len(failed) == 0 {
			return
		}
		nt.cfg.Logger.Warn().Int("failed", len(failed)).Int("events", len(batch)).Int("attempt", attempt).Msg("bus failed some events; re-sending only those")
		batch = failed
		time.Sleep(bo.NextBackOff())
	}
}

// retryable reports whether an entry's error code may clear on its own. Malformed or
// forbidden entries fail at once.
func retryable(code string) bool {
	switch code {
	case "MalformedDetail", "InvalidArgument", "ValidationException", "AccessDeniedException",
		"NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException", "EntryTooLarge", "NotFound":
		return false
	}
	return true
}

// Close stops taking events, puts what is queued (waiting for its retries) and returns. Safe
// to call more than once; Notify after Close returns ErrClosed.
func (nt *Notifier) Close() error {
	nt.close.Do(func() { close(nt.quit) })
	<-nt.done
	return nil
}

// Check reports whether the bus exists and the credentials can read it (DescribeEventBus).
func (nt *Notifier) Check(ctx context.Context) error {
	_, err := nt.cfg.Client.DescribeEventBus(ctx, &awseb.DescribeEventBusInput{Name: aws.String(nt.cfg.Bus)})
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("EventBridge bus %q does not exist: create it (aws events create-event-bus --name NAME) or fix notify.eventbridge.bus", nt.cfg.Bus)
		}
		return fmt.Errorf("EventBridge bus %q: %w", nt.cfg.Bus, err)
	}
	return nil
}
