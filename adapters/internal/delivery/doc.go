// Package delivery is the delivery engine of infleet's queue subscribers: one implementation
// of the flow control that every transport needs, so that a transport implements only what is
// its own. It imports no adapter; every adapter may import it.
//
// An Engine runs one subscription. It owns
//
//   - concurrency: at most Config.MaxInFlight messages held at once, slots taken in batches
//     (gathering free slots for up to GatherWindow before a small fetch) by Config.Fetchers
//     fetch loops that back off after failures;
//   - the hand-out: each message on an unbuffered Watermill channel, in the order the source
//     gave them, with a context that ends when the message is answered, when the
//     subscription's context ends, or when a stopping engine stops draining;
//   - holding: long-lived holder goroutines wait for each message's ack or nack, and a
//     heartbeat renews the leases of held messages (Config.Lease) before they run out;
//   - answers: an ack, or a nack with the redelivery delay the handler put in the metadata
//     (read with messages.NackDelay), passed to the transport; where the transport cannot
//     redeliver, the engine hands the message out again after the delay;
//   - the two-stage stop: no more fetching; messages fetched and not handed out are given
//     back at once; held messages get Config.DrainTimeout with live contexts (on Close),
//     then their contexts are cancelled and handlers get Config.CloseTimeout; messages
//     still unanswered are abandoned to the transport's redelivery, and the channel closes.
//
// A transport implements Source (fetch up to n messages), a Delivery per message (Ack,
// Nack with a delay, Release of a message fetched but never handed out), and Extender where
// its messages are leased (JetStream's InProgress, SQS's ChangeMessageVisibility). Batching
// of answers (SQS's DeleteMessageBatch) stays behind the transport's Ack; Config.Finish sends
// what is batched before the channel closes. A transport that pushes messages instead of
// pulling them (Kafka's partition readers, which must hand out in partition order and settle
// every message within its consumer-group generation) passes a nil Source and calls
// Engine.Offer. Group ties one Subscriber's engines to its Close.
//
// # Writing a transport
//
// A new transport (Google Pub/Sub, Redis Streams...) implements Source and Delivery, and
// Extender if it leases messages, and starts an Engine per Subscribe; its Subscriber then
// passes two suites: Watermill's universal Pub/Sub suite (pubsub/tests.TestPubSub, as
// adapters/nats, sqs and kafka run it) and this engine's conformance suite,
// deliverytest.Run, given a deliverytest.Harness that opens queues of the transport. The
// engine's own tests run that suite on deliverytest.Queue, an in-memory source with a
// leasing broker's semantics; ExampleStart shows the whole cycle.
package delivery
