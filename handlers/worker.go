package handlers

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/worker"
)

// RetryError is what a job handler returns to make the router nack a delivery; the transport
// redelivers it, after the delay recorded in the message's metadata where it can delay.
type RetryError struct {
	Reason string
	// HandedBack marks a job cut off by shutdown (worker.Outcome.HandedBack): expected, so
	// WatermillLogger logs the router's report of it at debug, not as an error.
	HandedBack bool
}

func (e *RetryError) Error() string { return "delivery handed back for retry: " + e.Reason }

// JobHandler adapts a worker.Worker to a Watermill handler: the delivery is acked when the
// worker settled it (completed, failed for good, dead-lettered or dropped as a duplicate) and
// nacked, with messages.MetaNackDelay set to the backoff, when it asks for a retry. Behind a
// worker.Scheduler with held acks, the ack of the message the router gets frees the handler,
// and the Scheduler acks the transport's message once its archive write returned.
func JobHandler(w *worker.Worker) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		out := w.Process(msg.Context(), worker.Delivery{
			MessageID: msg.UUID,
			Payload:   msg.Payload,
			Metadata:  msg.Metadata,
		})
		if !out.Retry {
			return nil
		}
		if out.Delay > 0 {
			msg.Metadata.Set(messages.MetaNackDelay, out.Delay.String())
		}
		return &RetryError{Reason: out.Reason, HandedBack: out.HandedBack}
	}
}

// Recoverer turns a handler panic into an error, so the delivery is nacked and retried under
// the job's attempt limit instead of crashing the worker.
func Recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &RetryError{Reason: fmt.Sprintf("handler panic: %v", r)}
			}
		}()
		return h(msg)
	}
}
