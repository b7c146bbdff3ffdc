// Package nats is infleet's embedded transport: an in-process NATS JetStream server with file
// storage, and a Watermill Publisher and Subscriber on JetStream work-queue streams.
//
// Each topic ("infleet.high", "infleet.dead"...) is the only subject of its own stream
// (StreamName maps the topic to the stream's name). Streams use work-queue retention: a message
// stays stored until one consumer acknowledges it, and each stream admits one consumer group.
// The Subscriber is a pull source for the delivery engine (adapters/internal/delivery), which
// hands out up to MaxInFlight messages at once per subscription, keeps the messages its
// handlers hold alive with InProgress, and turns a Nack into a (delayed) Nak, so a job is
// redelivered, never lost, whatever happens to the process holding it.
//
// A full disk: the Server reports it (Err, matching pipeline.ErrStorageFull) while less than
// MinFreeBytes is free, and a Publisher gated on it refuses messages at once rather than push
// JetStream into a failed write. JetStream stops writing a stream for good after one; the
// Server restarts JetStream in place once space returns, so no process restart is needed.
package nats
