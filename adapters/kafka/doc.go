// Package kafka is infleet's Kafka transport: a Watermill Publisher and Subscriber on
// github.com/segmentio/kafka-go.
//
// The Publisher writes through one batching kafka.Writer (bounded linger, compression,
// acknowledgement by all in-sync replicas) and keys every message by its job id, so the
// messages of one job stay in one partition, in order. Metadata travels as record headers.
//
// The Subscriber joins a kafka.ConsumerGroup per subscription and, in each generation, reads
// every assigned partition with its own kafka.Reader, offering each record in partition order
// to the delivery engine (adapters/internal/delivery), which hands out up to MaxInFlight
// messages at once, holds them until answered and stops the subscription. Offsets are checkpointed per partition: an offset is committed only when every
// earlier offset of its partition has been acked, so a slow or failed message holds the
// partition's commit point and is never skipped, and a worker that dies or loses a partition
// leaves the unacked messages to be delivered again. Commits go through the generation that
// fetched the messages (or the next one, when it keeps the partition with the same member),
// and the coordinator refuses a generation's commits once the group has moved on; when a
// partition moves to another member, the old owner drops its checkpoints and ignores late
// acks, so it never moves the group's commit point back over the new owner's work.
//
// Retries do not block a partition: a message nacked with a delay is written to the topic's
// retry topic ("<topic>.retry") with headers naming its origin and not-before time, and only
// then acked, so the commit point moves on. Each subscription also consumes its retry topic
// (group "<group>.retry"), waits until each record is due (holding at most RetryInFlight,
// then pausing fetches) and writes it back to its origin before acking it there. A crash at
// any point redelivers, never loses: every record is written onward before it is acked.
//
// Dead letters stay on the dead-letter topic, where Kafka cannot delete them: a removal
// (after a redrive) is a record keyed by the dead letter's id on the compacted topic
// "<dead-letter topic>.removed", and scans skip the ids found there. Lifecycle events can be
// published to a topic with Notifier.
//
// Every connection can use TLS (NewTLSConfig: a CA file, a client certificate, a server name)
// and SASL (NewSASLMechanism: plain, scram-sha-256, scram-sha-512, or aws-msk-iam signed with
// AWS credentials): each config takes a *tls.Config and a sasl.Mechanism, which reach every
// writer, reader, consumer group and admin client it makes. Cluster.Check proves a connection
// before start-up goes on, and names the stage that failed.
package kafka
