package kafka

import (
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/infleet/infleet/adapters/internal/delivery"
)

// record is a fetched record offered to the delivery engine, answered under the checkpoint
// epoch it was fetched in. It keeps only what it needs of the fetched kafkago.Message (one
// allocation per message). The engine calls its methods one at a time.
type record struct {
	sub       *subscription
	partition int
	offset    int64
	epoch     uint64
	key       []byte
	value     []byte
	headers   []kafkago.Header
	uuid      string // of the message last handed out, for logs
	again     bool   // kept after a nack, to be handed out again from memory
}

var _ delivery.Delivery = (*record)(nil)

// records recycles records: one is taken per fetched message, and given back once the
// engine is done with it (see free).
var records = sync.Pool{New: func() any { return new(record) }}

// newRecord returns the record of m, fetched under epoch.
func newRecord(sub *subscription, m *kafkago.Message, epoch uint64) *record {
	r := records.Get().(*record)
	*r = record{sub: sub, partition: m.Partition, offset: m.Offset, epoch: epoch, key: m.Key, value: m.Value, headers: m.Headers}
	return r
}

// free gives r back for reuse, once the engine will not use it again: after its Ack, a
// Nack that did not keep it, its Release, or a refused Offer. A record the engine drops
// or abandons is left to the garbage collector.
func (r *record) free() {
	*r = record{}
	records.Put(r)
}

// message returns the record as fetched.
func (r *record) message() kafkago.Message {
	return kafkago.Message{Topic: r.sub.topic, Partition: r.partition, Offset: r.offset, Key: r.key, Value: r.value, Headers: r.headers}
}

// Message turns the record into a Watermill message; nil when, kept after a nack, its
// partition has moved to another member meanwhile (the new owner delivers it again).
func (r *record) Message() *message.Message {
	if r.again && !r.sub.cp.current(r.partition, r.epoch) {
		return nil
	}
	msg := fromRecord(r.message())
	r.uuid = msg.UUID
	return msg
}

// Ack marks the offset acked, to be committed once every earlier offset of its partition
// is; an ack under an epoch that is over is ignored. On a retry topic's subscription the
// record is first written back to its origin.
func (r *record) Ack() {
	defer r.free()
	if r.sub.origin != "" && !r.forward() {
		return
	}
	r.sub.cp.ack(r.partition, r.offset, r.epoch)
}

// Nack writes a record nacked with a delay to the retry topic and acks it; without a delay,
// or where there is no retry topic or writing to it fails, it keeps the record to be handed
// out again from memory after the delay, holding its partition's commit point. Once the
// group has moved the partition to another member (the epoch is over) the record is left to
// the new owner. A retry topic's record is left uncommitted: the group forwards it again.
func (r *record) Nack(delay time.Duration) bool {
	sub := r.sub
	if sub.origin != "" || !sub.cp.current(r.partition, r.epoch) {
		r.free()
		return false
	}
	if delay > 0 && sub.retryTopic != "" && sub.toRetryTopic(r.message(), r.uuid, delay) {
		sub.cp.ack(r.partition, r.offset, r.epoch)
		r.free()
		return false
	}
	r.again = true
	return true
}

// Release leaves the record uncommitted, for the group to deliver again.
func (r *record) Release() { r.free() }
