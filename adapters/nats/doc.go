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
package nats
