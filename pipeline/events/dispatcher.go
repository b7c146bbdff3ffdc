// Package events delivers the lifecycle events a job store keeps in its outbox
// (pipeline.Outbox): a Dispatcher claims them, hands them to the notifier and deletes them once
// delivered. Every worker process runs one; claims with a lease spread the events over them
// and give a dead process's events back to the others.
package events

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultLease   = 30 * time.Second
	DefaultPoll    = 500 * time.Millisecond
	DefaultBatch   = 64
	DefaultBackoff = time.Second
	// DefaultMaxBackoff caps the wait before a failed event is tried again.
	DefaultMaxBackoff = 5 * time.Minute
)

// Config wires a Dispatcher. Outbox and Notifier are required.
type Config struct {
	// Outbox is the job store's outbox.
	Outbox pipeline.Outbox
	// Notifier delivers the events (every configured sink).
	Notifier pipeline.Notifier
	// Holder names this dispatcher in its claims; default a new unique id.
	Holder string
	// Lease is how long a claim holds an event: a dispatcher that dies holding events gives
	// them back after it, and one delivery may take at most two thirds of it. Default 30s.
	Lease time.Duration
	// Poll is how often an idle dispatcher looks for events written by other processes;
	// events written in this process wake it at once (Wake). Default 500ms.
	Poll time.Duration
	// Batch caps the deliveries under way at once (and so the events one claim takes).
	// Default 64.
	Batch int
	// Backoff is the wait after an event's first failed delivery, doubled after each further
	// one up to MaxBackoff (defaults 1s and 5m). An event is retried until it is delivered; the
	// job's later events wait behind it.
	Backoff, MaxBackoff time.Duration
	// CallbackOnly says that the sinks deliver to a job's callback_url only (no webhook URL,
	// SNS, EventBridge or Kafka topic is configured): Wants then refuses the events of jobs
	// without one, which no sink would take, so that they cost no writes.
	CallbackOnly bool
	// Logger receives the dispatcher's logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// Dispatcher delivers kept events at least once, in order per job: it claims the earliest kept
// event of each job, delivers the claimed events of different jobs at once, deletes the ones
// delivered and puts off the others with a backoff. An event delivered but not yet deleted
// when its process dies is delivered again, with the same Event.ID. Safe for concurrent use;
// Run is called once.
type Dispatcher struct {
	cfg  Config
	log  zerolog.Logger
	wake chan struct{}
}

var _ pipeline.OutboxWaker = (*Dispatcher)(nil)

// New returns a Dispatcher of cfg with defaults applied, or every problem with cfg.
func New(cfg Config) (*Dispatcher, error) {
	var errs []error
	if cfg.Outbox == nil {
		errs = append(errs, errors.New("events: no outbox (set Config.Outbox to a job store that keeps events)"))
	}
	if cfg.Notifier == nil {
		errs = append(errs, errors.New("events: no notifier (set Config.Notifier)"))
	}
	if cfg.Lease < 0 || cfg.Poll < 0 || cfg.Batch < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 {
		errs = append(errs, errors.New("events: Lease, Poll, Batch, Backoff and MaxBackoff must not be negative (leave them zero for the defaults)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Holder = cmp.Or(cfg.Holder, pipeline.NewJobID())
	cfg.Lease = cmp.Or(cfg.Lease, DefaultLease)
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.Batch = cmp.Or(cfg.Batch, DefaultBatch)
	cfg.Backoff = cmp.Or(cfg.Backoff, DefaultBackoff)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	return &Dispatcher{
		cfg:  cfg,
		log:  cfg.Logger.With().Str("component", "events").Str("holder", cfg.Holder).Logger(),
		wake: make(chan struct{}, 1),
	}, nil
}

// Wants reports whether the event of rec reaches a sink: always, unless Config.CallbackOnly
// is set and rec's body has no callback_url.
func (d *Dispatcher) Wants(rec messages.JobRecord) bool {
	return !d.cfg.CallbackOnly || pipeline.NotificationOf(rec).CallbackURL != ""
}

// Wake makes Run look for events now instead of at its next poll. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers events until ctx ends. It keeps up to Batch deliveries under way: it claims as
// many events as there are free places, starts each delivery at once, and settles every
// delivery on its own (delivered events are deleted in batches, failed ones put off), so one
// slow receiver holds up only its own job's events. Deliveries under way when ctx ends are cut
// off; their events stay kept and are delivered again after their lease, by this process or
// another.
func (d *Dispatcher) Run(ctx context.Context) {
	var (
		wg       sync.WaitGroup
		settled  = make(chan settlement, d.cfg.Batch)
		inFlight = 0
		failures = 0
	)
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// Settle what has finished: delivered events go in one delete.
		inFlight -= d.settle(ctx, settled)
		if ctx.Err() != nil {
			return
		}
		free := d.cfg.Batch - inFlight
		var wait time.Duration
		if free > 0 {
			evs, err := d.cfg.Outbox.ClaimEvents(ctx, d.cfg.Holder, d.cfg.Lease, free)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				failures++
				wait = min(d.cfg.Poll<<min(failures, 6), time.Minute)
				d.log.Warn().Err(err).Dur("retry_in", wait).Msg("claim of kept events failed")
			case len(evs) == 0:
				failures = 0
				wait = d.cfg.Poll
			default:
				failures = 0
			}
			for _, ev := range evs {
				inFlight++
				wg.Go(func() { settled <- settlement{ev: ev, err: d.deliver(ctx, ev)} })
			}
		} else {
			wait = d.cfg.Poll
		}
		if wait == 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case s := <-settled:
			// Put it back for settle, which takes every finished delivery at once.
			inFlight -= d.settleOne(ctx, s, settled)
		case <-timer.C:
		}
	}
}

// settlement is the outcome of one delivery.
type settlement struct {
	ev  pipeline.OutboxEvent
	err error
}

// deliver hands ev to the notifier, within two thirds of the lease.
func (d *Dispatcher) deliver(ctx context.Context, ev pipeline.OutboxEvent) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Lease*2/3)
	defer cancel()
	err := pipeline.Announce(ctx, d.cfg.Notifier, ev.Notification)
	if err != nil {
		d.log.Warn().Err(err).Str("job_id", ev.JobID()).Str("event_id", ev.ID()).Str("event", ev.Event.Type).
			Int("attempt", ev.Attempts).Msg("event not delivered; will retry")
	}
	return err
}

// settleOne settles first and every other finished delivery waiting in settled, and returns
// how many it settled.
func (d *Dispatcher) settleOne(ctx context.Context, first settlement, settled chan settlement) int {
	batch := []settlement{first}
	for {
		select {
		case s := <-settled:
			batch = append(batch, s)
		default:
			d.settleBatch(ctx, batch)
			return len(batch)
		}
	}
}

// settle settles every finished delivery waiting in settled and returns how many.
func (d *Dispatcher) settle(ctx context.Context, settled chan settlement) int {
	select {
	case s := <-settled:
		return d.settleOne(ctx, s, settled)
	default:
		return 0
	}
}

// settleBatch deletes the delivered events of batch in one call and puts off the others with
// their backoff. A failure is logged: the events stay kept and come back after their lease.
func (d *Dispatcher) settleBatch(ctx context.Context, batch []settlement) {
	if ctx.Err() != nil {
		return
	}
	var delivered []pipeline.OutboxEvent
	for _, s := range batch {
		if s.err == nil {
			delivered = append(delivered, s.ev)
			continue
		}
		if err := d.cfg.Outbox.DelayEvent(ctx, s.ev, time.Now().Add(d.backoff(s.ev.Attempts))); err != nil {
			d.log.Warn().Err(err).Str("event_id", s.ev.ID()).Msg("put off an undelivered event")
		}
	}
	if err := d.cfg.Outbox.DeleteEvents(ctx, delivered); err != nil {
		d.log.Warn().Err(err).Int("events", len(delivered)).Msg("delete delivered events; they will be delivered again")
	}
}

// backoff is the wait after the attempt-th failed delivery of an event.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	wait := d.cfg.Backoff
	for i := 1; i < attempt && wait < d.cfg.MaxBackoff; i++ {
		wait *= 2
	}
	return min(wait, d.cfg.MaxBackoff)
}
