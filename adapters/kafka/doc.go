// Package kafka is infleet's Kafka transport: a Watermill Publisher and Subscriber on
// github.com/segmentio/kafka-go.
//
// The Publisher writes through one batching kafka.Writer (bounded linger, compression,
// acknowledgement by all in-sync replicas) and keys every message by its job id, so the
// messages of one job stay in one partition, in order. Metadata travels as record headers.
//
// The Subscriber reads with one consumer-group kafka.Reader per subscription and hands out up
// to MaxInFlight messages at once. Offsets are checkpointed per partition: an offset is
// committed only when every earlier offset of its partition has been acked, so a slow or
// failed message holds the partition's commit point and is never skipped, and a worker that
// dies or loses a partition leaves the unacked messages to be delivered again. A nacked
// message is handed out again from memory after its nack delay.
package kafka
