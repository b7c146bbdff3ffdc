package sqs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infleet/infleet/messages"
)

// Message attributes the adapter writes besides the metadata keys.
const (
	// AttrUUID carries the Watermill message UUID. The name is watermill-aws's, so messages
	// published by either library keep their UUID when read by the other.
	AttrUUID = "_watermill_message_uuid"
	// AttrMetadata carries, as one JSON object, the metadata entries that did not get an
	// attribute of their own.
	AttrMetadata = "infleet_metadata"
	// AttrBodyEncoding is set to "base64" when the payload was not text SQS accepts as a body
	// (invalid UTF-8 or characters outside SQS's set) and to "empty" for an empty payload.
	AttrBodyEncoding = "infleet_body_encoding"
)

// MetaReceiveCount is the metadata key under which the Subscriber puts how many times SQS has
// handed the message out (ApproximateReceiveCount: 1 on the first delivery).
const MetaReceiveCount = "sqs_receive_count"

// MetaMessageID is the metadata key under which the Subscriber puts the SQS message id.
const MetaMessageID = "sqs_message_id"

// maxAttributes is SQS's limit of message attributes per message.
const maxAttributes = 10

// MaxMessageSize is the largest message, body and attributes together, the Publisher sends.
const MaxMessageSize = 256 << 10

// emptyBody stands in for an empty payload: SQS refuses empty bodies.
const emptyBody = "-"

// wellKnown lists the metadata keys sent as attributes of their own, in order of preference,
// so that SQS consoles, filters and producers outside infleet see them.
var wellKnown = []string{
	messages.MetaJobID,
	messages.MetaPriority,
	messages.MetaTenant,
	messages.MetaTraceparent,
	messages.MetaReplayName,
	messages.MetaDeadReason,
	messages.MetaAttempts,
}

// receiveOnly are keys the Subscriber sets on delivery; they are not published again.
var receiveOnly = []string{messages.MetaNackDelay, MetaReceiveCount, MetaMessageID, messages.MetaDeliveryCount}

// encoded is a message as SendMessageBatch takes it.
type encoded struct {
	body  string
	attrs map[string]types.MessageAttributeValue
	size  int
}

// encode turns msg into an SQS body and at most ten message attributes: the UUID, the
// well-known metadata keys as String attributes while room allows, and every other entry in
// one JSON attribute. decode restores the exact metadata map.
func encode(msg *message.Message) (encoded, error) {
	e := encoded{attrs: make(map[string]types.MessageAttributeValue, maxAttributes)}
	switch {
	case len(msg.Payload) == 0:
		e.body = emptyBody
		e.attrs[AttrBodyEncoding] = stringAttr("empty")
	case validText(string(msg.Payload)):
		e.body = string(msg.Payload)
	default:
		e.body = base64.StdEncoding.EncodeToString(msg.Payload)
		e.attrs[AttrBodyEncoding] = stringAttr("base64")
	}
	if msg.UUID != "" {
		e.attrs[AttrUUID] = stringAttr(msg.UUID)
	}

	md := make(map[string]string, len(msg.Metadata))
	for k, v := range msg.Metadata {
		if !slices.Contains(receiveOnly, k) {
			md[k] = v
		}
	}
	// Every entry gets its own attribute when all fit; otherwise one slot is kept for the
	// JSON attribute and the well-known keys come first.
	own := func(k, v string) bool { return validAttrName(k) && v != "" && validText(v) && !reserved(k) }
	room := maxAttributes - len(e.attrs)
	fitsAll := len(md) <= room
	if fitsAll {
		for k, v := range md {
			if !own(k, v) {
				fitsAll = false
				break
			}
		}
	}
	if fitsAll {
		for k, v := range md {
			e.attrs[k] = stringAttr(v)
		}
	} else {
		room-- // for AttrMetadata
		for _, k := range wellKnown {
			if v, ok := md[k]; ok && room > 0 && own(k, v) {
				e.attrs[k] = stringAttr(v)
				delete(md, k)
				room--
			}
		}
		if len(md) > 0 {
			packed, err := json.Marshal(md)
			if err != nil {
				return encoded{}, fmt.Errorf("encode metadata of message %s: %w", msg.UUID, err)
			}
			e.attrs[AttrMetadata] = stringAttr(string(packed))
		}
	}

	e.size = len(e.body)
	for k, v := range e.attrs {
		e.size += len(k) + len(*v.DataType) + len(aws.ToString(v.StringValue))
	}
	if e.size > MaxMessageSize {
		return encoded{}, fmt.Errorf("message %s is %d bytes with its attributes, over SQS's limit of %d: store large inputs in S3 and send a reference", msg.UUID, e.size, MaxMessageSize)
	}
	return e, nil
}

// decode turns a received SQS message into a Watermill message. A message that infleet did not
// publish (an S3 notification, an SNS envelope, a producer's own job) keeps its body as the
// payload, its SQS message id as UUID and its String and Number attributes as metadata.
func decode(m types.Message) (*message.Message, error) {
	uuid := aws.ToString(m.MessageId)
	md := make(message.Metadata, len(m.MessageAttributes)+2)
	var encoding, packed string
	for k, v := range m.MessageAttributes {
		switch k {
		case AttrUUID:
			uuid = aws.ToString(v.StringValue)
		case AttrMetadata:
			packed = aws.ToString(v.StringValue)
		case AttrBodyEncoding:
			encoding = aws.ToString(v.StringValue)
		default:
			if v.StringValue != nil {
				md[k] = *v.StringValue
			}
		}
	}
	if packed != "" {
		var rest map[string]string
		if err := json.Unmarshal([]byte(packed), &rest); err != nil {
			return nil, fmt.Errorf("attribute %s of SQS message %s is not a JSON object of strings: %w", AttrMetadata, aws.ToString(m.MessageId), err)
		}
		for k, v := range rest {
			md[k] = v
		}
	}
	body := aws.ToString(m.Body)
	var payload []byte
	switch encoding {
	case "":
		payload = []byte(body)
	case "empty":
		payload = []byte{}
	case "base64":
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("body of SQS message %s is marked base64 but does not decode: %w", aws.ToString(m.MessageId), err)
		}
		payload = b
	default:
		return nil, fmt.Errorf("SQS message %s has unknown body encoding %q", aws.ToString(m.MessageId), encoding)
	}
	msg := message.NewMessage(uuid, payload)
	msg.Metadata = md
	msg.Metadata.Set(MetaMessageID, aws.ToString(m.MessageId))
	delete(msg.Metadata, messages.MetaDeliveryCount)
	if rc, ok := m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; ok {
		msg.Metadata.Set(MetaReceiveCount, rc)
		msg.Metadata.Set(messages.MetaDeliveryCount, rc)
	}
	return msg, nil
}

// receiveCount returns the message's ApproximateReceiveCount, 0 when unknown.
func receiveCount(m types.Message) int {
	n, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	return n
}

func stringAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func reserved(k string) bool {
	return k == AttrUUID || k == AttrMetadata || k == AttrBodyEncoding
}

// validAttrName reports whether k is a name SQS accepts for a message attribute: up to 256
// letters, digits, '-', '_' and '.', not starting or ending with '.', no "..", and no
// "AWS." or "Amazon." prefix.
func validAttrName(k string) bool {
	if k == "" || len(k) > 256 || k[0] == '.' || k[len(k)-1] == '.' || strings.Contains(k, "..") {
		return false
	}
	lower := strings.ToLower(k)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validText reports whether s is valid UTF-8 made only of the characters SQS accepts in a body
// or a String attribute: #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD, #x10000-#x10FFFF.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		switch {
		case c == 0x9 || c == 0xA || c == 0xD:
		case c >= 0x20 && c <= 0xD7FF:
		case c >= 0xE000 && c <= 0xFFFD:
		case c >= 0x10000 && c <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}
