// Package sqs is infleet's Amazon SQS transport: a Watermill Publisher and Subscriber on
// aws-sdk-go-v2, one standard queue per topic (the topic is the queue's name), and the
// queues' set-up (EnsureQueues, CheckQueues).
//
// The Publisher sends with SendMessageBatch (ten messages or 256 KiB per call), retrying only
// the entries that failed. Metadata travels as message attributes: SQS allows ten per message,
// so the well-known keys (job id, priority, tenant, traceparent...) get attributes of their
// own while room allows and the rest travel as one JSON attribute; the Subscriber restores the
// exact metadata map and the Watermill UUID.
//
// The Subscriber is a source for the delivery engine (adapters/internal/delivery), which runs
// several long polls of up to ten messages per queue and hands out up to MaxInFlight
// messages at once, each on its own, so one slow or failing message never holds
// back the others of its batch. Acks become batched DeleteMessageBatch calls; a nack makes
// the message visible again after the delay in messages.MetaNackDelay (at once without one).
// While a handler holds a message its visibility timeout is extended every half timeout
// (ChangeMessageVisibilityBatch, ten per call), so a job longer than the timeout is not
// delivered twice; when the process dies the extensions stop and the message comes back after
// the timeout. A message that keeps failing is moved by the queue's redrive policy to the
// dead-letter queue, which the Subscriber can list and prune (pipeline.DeadLetterBox).
package sqs
