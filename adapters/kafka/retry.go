package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"
	kafkago "github.com/segmentio/kafka-go"
)

// Headers of a record on a retry topic.
const (
	// HeaderRetryNotBefore is when a retry record may go back to its origin topic, RFC 3339
	// with nanoseconds, UTC.
	HeaderRetryNotBefore = "infleet_retry_not_before"
	// HeaderRetryTopic is the topic a retry record goes back to.
	HeaderRetryTopic = "infleet_retry_topic"
)

// recordLinger bounds how long a retry, forward or removal record waits for others to share
// its produce request: the caller waits for the write.
const recordLinger = 2 * time.Millisecond

// RetryTopic names topic's retry topic with the default suffix, for `infleet init`.
func RetryTopic(topic string) string { return topic + DefaultRetrySuffix }

// newRecordWriter returns the writer of retry records, forwards and removal records:
// acknowledged by every in-sync replica, keyed by hash (a job's records stay together).
func newRecordWriter(brokers []string, rt kafkago.RoundTripper, log zerolog.Logger) *kafkago.Writer {
	return &kafkago.Writer{
		Addr:         kafkago.TCP(brokers...),
		Transport:    rt,
		Balancer:     &kafkago.Hash{},
		BatchTimeout: recordLinger,
		RequiredAcks: kafkago.RequireAll,
		ErrorLogger:  errorLogger(log),
	}
}

// retryTopicReady creates the retry topic when CreateMissingTopics is set, else checks that
// it exists.
func (s *Subscriber) retryTopicReady(ctx context.Context, topic string) error {
	if s.cfg.CreateMissingTopics {
		return s.ensureTopic(ctx, topic)
	}
	client := s.client()
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("look up retry topic %s: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil || len(meta.Topics[0].Partitions) == 0 {
		return fmt.Errorf("retry topic %s does not exist", topic)
	}
	return nil
}

// toRetryTopic writes the fetched record m to the retry topic, due after delay, and reports
// whether the brokers stored it. On false the caller keeps m (nothing was lost).
func (sub *subscription) toRetryTopic(m kafkago.Message, uuid string, delay time.Duration) bool {
	notBefore := time.Now().Add(delay).UTC().Format(time.RFC3339Nano)
	hdrs := withoutRetryHeaders(m.Headers)
	hdrs = append(hdrs,
		kafkago.Header{Key: HeaderRetryNotBefore, Value: []byte(notBefore)},
		kafkago.Header{Key: HeaderRetryTopic, Value: []byte(sub.topic)})
	rec := kafkago.Message{Topic: sub.retryTopic, Key: m.Key, Value: m.Value, Headers: hdrs}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
	defer cancel()
	if err := sub.s.writer.WriteMessages(ctx, rec); err != nil {
		sub.log.Warn().Err(err).Str("message_uuid", uuid).Str("retry_topic", sub.retryTopic).
			Msg("writing to the retry topic failed; the message waits in memory and holds its partition's commit point")
		return false
	}
	return true
}

// forwardDue takes the retry topic's messages from the engine, which hands them out here
// instead of to a router, and acks each once it is due: the ack writes it back to its origin
// (see record.forward). Each holds its slot until then, so a full window pauses fetching from
// the retry topic. Stopping while one waits nacks it, which leaves it uncommitted: the next
// member of the group forwards it.
func (sub *subscription) forwardDue() {
	for msg := range sub.engine.Messages() {
		go sub.whenDue(msg)
	}
}

// whenDue acks msg, a retry record, once its not-before time has come.
func (sub *subscription) whenDue(msg *message.Message) {
	var notBefore time.Time
	if v, ok := msg.Metadata[HeaderRetryNotBefore]; ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			sub.log.Warn().Str("partition", msg.Metadata.Get(MetaPartition)).Str("offset", msg.Metadata.Get(MetaOffset)).
				Msg("retry record has no valid not-before time; forwarding it at once")
		}
		notBefore = t
	}
	if wait := time.Until(notBefore); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-sub.engine.Stopping().Done():
			t.Stop()
			msg.Nack()
			return
		}
	}
	msg.Ack()
}

// forward writes the retry record r back to its origin topic, retrying until it succeeds
// or the subscription stops, and reports whether it did. A record whose partition moved to
// another member is not forwarded: that member forwards it.
func (r *record) forward() bool {
	sub, m := r.sub, r.message()
	if !sub.cp.current(m.Partition, r.epoch) {
		return false
	}
	origin := sub.origin
	for _, h := range m.Headers {
		if h.Key == HeaderRetryTopic && len(h.Value) > 0 {
			origin = string(h.Value)
		}
	}
	rec := kafkago.Message{Topic: origin, Key: m.Key, Value: m.Value, Headers: withoutRetryHeaders(m.Headers)}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, retryWaitMax) {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultPublishTimeout)
		err := sub.s.writer.WriteMessages(ctx, rec)
		cancel()
		if err == nil {
			return true
		}
		sub.log.Warn().Err(err).Str("origin_topic", origin).Dur("retry_in", wait).
			Msg("forwarding a due retry record failed; retrying")
		select {
		case <-time.After(wait):
		case <-sub.engine.Stopping().Done():
			return false
		}
	}
}

// withoutRetryHeaders copies hdrs less the retry headers.
func withoutRetryHeaders(hdrs []kafkago.Header) []kafkago.Header {
	out := make([]kafkago.Header, 0, len(hdrs)+2)
	for _, h := range hdrs {
		if h.Key != HeaderRetryNotBefore && h.Key != HeaderRetryTopic {
			out = append(out, h)
		}
	}
	return out
}
