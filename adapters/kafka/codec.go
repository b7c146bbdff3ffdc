package kafka

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/infleet/infleet/messages"
)

// Header and metadata names shared with the rest of infleet.
const (
	// HeaderUUID carries the Watermill message UUID.
	HeaderUUID = "_watermill_message_uuid"
	// MetaJobID is the metadata key whose value becomes the record key (per-job ordering).
	MetaJobID = "job_id"
	// MetaPartition and MetaOffset are set by the Subscriber on every message it hands out:
	// where the record lives, for logs.
	MetaPartition = "kafka_partition"
	MetaOffset    = "kafka_offset"
)

// recordKey is the job id of msg, or its UUID when it carries none.
func recordKey(msg *message.Message) []byte {
	if id := msg.Metadata.Get(MetaJobID); id != "" {
		return []byte(id)
	}
	return []byte(msg.UUID)
}

// toRecord turns msg into a record on topic: the payload is the value, every metadata key a
// header, the UUID the HeaderUUID header and the job id the key.
func toRecord(topic string, msg *message.Message) kafkago.Message {
	hdrs := make([]kafkago.Header, 0, len(msg.Metadata)+1)
	hdrs = append(hdrs, kafkago.Header{Key: HeaderUUID, Value: []byte(msg.UUID)})
	for k, v := range msg.Metadata {
		if k == HeaderUUID || k == MetaPartition || k == MetaOffset {
			continue
		}
		hdrs = append(hdrs, kafkago.Header{Key: k, Value: []byte(v)})
	}
	return kafkago.Message{Topic: topic, Key: recordKey(msg), Value: msg.Payload, Headers: hdrs}
}

// fromRecord turns a fetched record into a Watermill message. A record without the UUID header
// (from a producer outside infleet) gets "<topic>-<partition>-<offset>", stable across
// redeliveries.
func fromRecord(r kafkago.Message) *message.Message {
	msg := message.NewMessage("", r.Value)
	for _, h := range r.Headers {
		if h.Key == HeaderUUID {
			msg.UUID = string(h.Value)
			continue
		}
		msg.Metadata[h.Key] = string(h.Value)
	}
	if msg.UUID == "" {
		msg.UUID = r.Topic + "-" + strconv.Itoa(r.Partition) + "-" + strconv.FormatInt(r.Offset, 10)
	}
	msg.Metadata[MetaPartition] = strconv.Itoa(r.Partition)
	msg.Metadata[MetaOffset] = strconv.FormatInt(r.Offset, 10)
	// Kafka does not count deliveries: a producer's count is not taken (see
	// messages.MetaDeliveryCount).
	delete(msg.Metadata, messages.MetaDeliveryCount)
	return msg
}
