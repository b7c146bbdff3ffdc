package sqs

import (
	"fmt"
	"maps"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/infleet/infleet/messages"
)

// roundTrip encodes msg and decodes it as the Subscriber would receive it.
func roundTrip(t *testing.T, msg *message.Message) (*message.Message, encoded) {
	t.Helper()
	e, err := encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.attrs) > maxAttributes {
		t.Fatalf("%d attributes, over SQS's %d", len(e.attrs), maxAttributes)
	}
	for k, v := range e.attrs {
		if !validAttrName(k) || aws.ToString(v.StringValue) == "" || !validText(aws.ToString(v.StringValue)) {
			t.Fatalf("attribute %q = %q would be refused by SQS", k, aws.ToString(v.StringValue))
		}
	}
	if e.body == "" || !validText(e.body) {
		t.Fatalf("body %q would be refused by SQS", e.body)
	}
	got, err := decode(types.Message{MessageId: aws.String("mid"), Body: aws.String(e.body), MessageAttributes: e.attrs})
	if err != nil {
		t.Fatal(err)
	}
	return got, e
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range 15 {
		many[fmt.Sprintf("key_%d", i)] = fmt.Sprintf("value %d", i)
	}
	for k, v := range map[string]string{
		messages.MetaJobID: "job-1", messages.MetaPriority: "high", messages.MetaTenant: "acme",
		messages.MetaTraceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		messages.MetaReplayName:  "r1", messages.MetaDeadReason: "model_error: boom", messages.MetaAttempts: "3",
	} {
		many[k] = v
	}
	cases := []struct {
		name    string
		payload []byte
		md      map[string]string
	}{
		{"few keys", []byte(`{"a":1}`), map[string]string{messages.MetaJobID: "j", "x": "y"}},
		{"many keys", []byte("text"), many},
		{"awkward keys and values", []byte("p"), map[string]string{"with space": "v", "AWS.trace": "v", "empty": "", "ctl": "a\x00b", "ok": "ü"}},
		{"binary payload", []byte{0xff, 0x00, 0x01}, map[string]string{"a": "b"}},
		{"empty payload", []byte{}, nil},
		{"no metadata", []byte("x"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := message.NewMessage("uuid-1", c.payload)
			maps.Copy(msg.Metadata, c.md)
			msg.Metadata.Set(messages.MetaNackDelay, "5s")
			got, _ := roundTrip(t, msg)
			if got.UUID != "uuid-1" {
				t.Errorf("uuid %q", got.UUID)
			}
			if string(got.Payload) != string(c.payload) {
				t.Errorf("payload %q, want %q", got.Payload, c.payload)
			}
			md := maps.Clone(map[string]string(got.Metadata))
			if md[MetaMessageID] != "mid" {
				t.Errorf("message id metadata %q", md[MetaMessageID])
			}
			delete(md, MetaMessageID)
			want := map[string]string{}
			maps.Copy(want, c.md)
			if !maps.Equal(md, want) {
				t.Errorf("metadata\n got %v\nwant %v", md, want)
			}
		})
	}
}

// TestCodecWellKnownOwnAttributes checks that with more keys than attributes the well-known
// keys still travel as attributes of their own.
func TestCodecWellKnownOwnAttributes(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("u", []byte("x"))
	for i := range 20 {
		msg.Metadata.Set(fmt.Sprintf("k%d", i), "v")
	}
	for _, k := range wellKnown {
		msg.Metadata.Set(k, "v-"+k)
	}
	_, e := roundTrip(t, msg)
	for _, k := range wellKnown {
		if aws.ToString(e.attrs[k].StringValue) != "v-"+k {
			t.Errorf("well-known key %s is not its own attribute", k)
		}
	}
	if _, ok := e.attrs[AttrMetadata]; !ok {
		t.Error("no packed metadata attribute")
	}
}

// TestCodecForeignMessage checks a message published outside infleet: its id is the UUID and
// its attributes the metadata.
func TestCodecForeignMessage(t *testing.T) {
	t.Parallel()
	got, err := decode(types.Message{
		MessageId: aws.String("m-1"), Body: aws.String(`{"Records":[]}`),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"job_id": {DataType: aws.String("String"), StringValue: aws.String("j")},
			"n":      {DataType: aws.String("Number"), StringValue: aws.String("7")},
			"bin":    {DataType: aws.String("Binary"), BinaryValue: []byte{1}},
		},
		Attributes: map[string]string{"ApproximateReceiveCount": "3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != "m-1" || got.Metadata.Get("job_id") != "j" || got.Metadata.Get("n") != "7" || got.Metadata.Get(MetaReceiveCount) != "3" {
		t.Fatalf("got uuid %q metadata %v", got.UUID, got.Metadata)
	}
	if _, ok := got.Metadata["bin"]; ok {
		t.Fatal("binary attribute became metadata")
	}
}

func TestCodecTooLarge(t *testing.T) {
	t.Parallel()
	if _, err := encode(message.NewMessage("u", make([]byte, MaxMessageSize+1))); err == nil {
		t.Fatal("no error for a message over 256 KiB")
	}
}
