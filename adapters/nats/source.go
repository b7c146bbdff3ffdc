package nats

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/internal/delivery"
)

// source pulls one subscription's messages from its JetStream consumer for the delivery
// engine, which runs one fetch loop on it.
type source struct {
	s     *Subscriber
	topic string
	log   zerolog.Logger
	cons  jetstream.Consumer
	// stale is set after a failed pull: the stream or consumer may have been deleted, and the
	// next fetch puts them back first.
	stale bool
}

var (
	_ delivery.Source   = (*source)(nil)
	_ delivery.Extender = (*source)(nil)
)

// Fetch asks for n messages and delivers each that arrives within pullExpiry. A pull request
// is never abandoned half-way: the engine gives back what arrives while it stops, rather
// than leave it waiting for AckWait.
func (src *source) Fetch(ctx context.Context, n int, deliver func(delivery.Delivery)) error {
	if src.stale {
		cctx, cancel := context.WithTimeout(ctx, consumerTimeout)
		if cons, err := src.s.consumer(cctx, src.topic); err == nil {
			src.cons, src.stale = cons, false
		}
		cancel()
	}
	batch, err := src.cons.Fetch(n, jetstream.FetchMaxWait(pullExpiry))
	if err != nil {
		return src.failed(err)
	}
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			src.log.Error().Err(err).Msg("delivered message has no JetStream metadata; giving it back")
			nak(src.log, m, 0)
			continue
		}
		deliver(&jsDelivery{src: src, m: m, msg: fromJetStream(m, meta)})
	}
	if err := batch.Error(); err != nil {
		return src.failed(err)
	}
	return nil
}

// failed marks the consumer for re-creation, or ends the subscription when the connection
// is closed.
func (src *source) failed(err error) error {
	if src.s.cfg.Conn.IsClosed() {
		return fmt.Errorf("nats connection closed: %w: %w", delivery.ErrSourceClosed, err)
	}
	src.stale = true
	return err
}

// Extend reports progress on ds, so that JetStream waits another AckWait for each.
func (src *source) Extend(_ context.Context, ds []delivery.Delivery) []bool {
	renewed := make([]bool, len(ds))
	for i, d := range ds {
		if err := d.(*jsDelivery).m.InProgress(); err != nil {
			src.log.Warn().Err(err).Msg("progress report failed; the message may be delivered again while it runs")
			continue
		}
		renewed[i] = true
	}
	return renewed
}

// jsDelivery is one pulled message.
type jsDelivery struct {
	src *source
	m   jetstream.Msg
	msg *message.Message
}

// Message returns the decoded message; it is handed out once (a nack goes back to the
// broker).
func (d *jsDelivery) Message() *message.Message { return d.msg }

// Ack acknowledges the message, waiting for JetStream's confirmation with ConfirmAcks.
func (d *jsDelivery) Ack() {
	var err error
	if d.src.s.cfg.ConfirmAcks {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
		err = d.m.DoubleAck(ctx)
		cancel()
	} else {
		err = d.m.Ack()
	}
	if err != nil {
		d.src.log.Warn().Err(err).Msg("ack failed; the message will be delivered again")
	}
}

// Nack naks the message, with its delay.
func (d *jsDelivery) Nack(delay time.Duration) bool {
	nak(d.src.log, d.m, delay)
	return false
}

// Release naks the message for redelivery at once.
func (d *jsDelivery) Release() { nak(d.src.log, d.m, 0) }

func nak(log zerolog.Logger, m jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = m.NakWithDelay(delay)
	} else {
		err = m.Nak()
	}
	if err != nil {
		log.Warn().Err(err).Msg("nak failed; the message will be delivered again after the ack wait")
	}
}
