package nats

import (
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/infleet/infleet/messages"
)

// MetaDeliveryCount is the metadata key under which the Subscriber puts how many times
// JetStream has delivered the message (1 on the first delivery).
const MetaDeliveryCount = messages.MetaDeliveryCount

// natsHeaderPrefix marks headers that belong to NATS and JetStream (Nats-Msg-Id,
// Nats-Expected-Stream...). Metadata keys with it are not sent, and such headers are not
// turned into metadata, so metadata cannot change how JetStream stores a message.
const natsHeaderPrefix = "Nats-"

// toNATS turns msg into a NATS message on subject topic: the payload is the body, every
// metadata key is a header, and the UUID is the Nats-Msg-Id header that JetStream deduplicates
// on. Header values lose leading and trailing white space, and line breaks become spaces.
func toNATS(topic string, msg *message.Message) *natsgo.Msg {
	m := natsgo.NewMsg(topic)
	m.Data = msg.Payload
	for k, v := range msg.Metadata {
		if strings.HasPrefix(k, natsHeaderPrefix) {
			continue
		}
		m.Header.Set(k, v)
	}
	if msg.UUID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msg.UUID)
	}
	return m
}

// fromJetStream turns a delivered JetStream message into a Watermill message. The UUID is the
// Nats-Msg-Id header; a message published without one (by a producer outside infleet) gets
// "<stream>-<stream sequence>", which is stable across redeliveries.
func fromJetStream(m jetstream.Msg, meta *jetstream.MsgMetadata) *message.Message {
	hdr := m.Headers()
	uuid := hdr.Get(jetstream.MsgIDHeader)
	if uuid == "" && meta != nil {
		uuid = meta.Stream + "-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	msg := message.NewMessage(uuid, m.Data())
	for k, vs := range hdr {
		if len(vs) == 0 || strings.HasPrefix(k, natsHeaderPrefix) {
			continue
		}
		msg.Metadata.Set(k, vs[0])
	}
	if meta != nil {
		msg.Metadata.Set(MetaDeliveryCount, strconv.FormatUint(meta.NumDelivered, 10))
	} else {
		delete(msg.Metadata, MetaDeliveryCount)
	}
	return msg
}
