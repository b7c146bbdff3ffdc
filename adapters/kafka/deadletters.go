package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/infleet/infleet/pipeline"
)

// RemovedSuffix names a dead-letter topic's removals topic: "<dead-letter topic>.removed".
// It is compacted: one record per removed dead-letter id, keyed by the id.
const RemovedSuffix = ".removed"

// scanFetchWait bounds one fetch of a dead-letter scan.
const scanFetchWait = 100 * time.Millisecond

// RemovedTopic names the compacted topic holding the removals of dead letters kept on topic.
func RemovedTopic(topic string) string { return topic + RemovedSuffix }

var _ pipeline.DeadLetterBox = (*Subscriber)(nil)

// ScanDeadLetters calls fn for each dead letter kept on topic, oldest first by record time,
// until fn returns false, skipping those whose id was recorded on RemovedTopic(topic). The id
// of a dead letter is "<partition>-<offset>". It reads the records present when it starts; a
// missing topic holds none. It implements pipeline.DeadLetterBox and is safe for concurrent
// use; it holds the topic's records in memory while it runs.
func (s *Subscriber) ScanDeadLetters(ctx context.Context, topic string, fn func(id string, payload []byte, md map[string]string) bool) error {
	client := s.client()
	removed := map[string]bool{}
	_, err := scanTopic(ctx, client, RemovedTopic(topic), func(r *protocol.Record, _ int) error {
		key, err := protocol.ReadAll(r.Key)
		if err != nil {
			return err
		}
		removed[string(key)] = r.Value != nil // a tombstone undoes a removal
		return nil
	})
	if err != nil {
		return fmt.Errorf("dead letters on %s: read removals: %w", topic, err)
	}
	type kept struct {
		id      string
		at      time.Time
		payload []byte
		md      map[string]string
	}
	var all []kept
	first, err := scanTopic(ctx, client, topic, func(r *protocol.Record, partition int) error {
		id := strconv.Itoa(partition) + "-" + strconv.FormatInt(r.Offset, 10)
		if removed[id] {
			return nil
		}
		value, err := protocol.ReadAll(r.Value)
		if err != nil {
			return err
		}
		md := make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			if h.Key != HeaderUUID && h.Key != HeaderRetryNotBefore && h.Key != HeaderRetryTopic {
				md[h.Key] = string(h.Value)
			}
		}
		all = append(all, kept{id: id, at: r.Time, payload: value, md: md})
		return nil
	})
	if err != nil {
		return fmt.Errorf("dead letters on %s: %w", topic, err)
	}
	s.forgetGone(ctx, topic, removed, first)
	slices.SortStableFunc(all, func(a, b kept) int { return a.at.Compare(b.at) })
	for _, k := range all {
		if !fn(k.id, k.payload, k.md) {
			return nil
		}
	}
	return nil
}

// RemoveDeadLetter records the dead letter id of topic as removed, on RemovedTopic(topic):
// later scans by any process skip it. Removing one twice, or one that does not exist, is not
// an error. It implements pipeline.DeadLetterBox and is safe for concurrent use.
func (s *Subscriber) RemoveDeadLetter(ctx context.Context, topic, id string) error {
	if p, o, ok := strings.Cut(id, "-"); !ok || !isNumber(p) || !isNumber(o) {
		return fmt.Errorf("dead letter id %q is not <partition>-<offset>", id)
	}
	rec := kafkago.Message{Topic: RemovedTopic(topic), Key: []byte(id), Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))}
	ctx, cancel := context.WithTimeout(ctx, DefaultPublishTimeout)
	defer cancel()
	if err := s.writer.WriteMessages(ctx, rec); err != nil {
		return fmt.Errorf("remove dead letter %s of %s: %w (create %s with infleet init)", id, topic, err, RemovedTopic(topic))
	}
	return nil
}

// forgetGone writes a tombstone on RemovedTopic(topic) for each removal whose dead letter
// the retention of topic has deleted (its offset is below its partition's first), so the
// removals topic stays as small as the dead letters it covers once compacted. first maps
// each partition of topic to its oldest retained offset. Failures are logged: a later scan
// tries again.
func (s *Subscriber) forgetGone(ctx context.Context, topic string, removed map[string]bool, first map[int]int64) {
	var tombstones []kafkago.Message
	for id, isRemoved := range removed {
		p, o, _ := strings.Cut(id, "-")
		partition, perr := strconv.Atoi(p)
		offset, oerr := strconv.ParseInt(o, 10, 64)
		start, ok := first[partition]
		if !isRemoved || perr != nil || oerr != nil || !ok || offset >= start {
			continue
		}
		tombstones = append(tombstones, kafkago.Message{Topic: RemovedTopic(topic), Key: []byte(id)})
	}
	if len(tombstones) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultPublishTimeout)
	defer cancel()
	if err := s.writer.WriteMessages(ctx, tombstones...); err != nil {
		s.log.Warn().Err(err).Str("topic", RemovedTopic(topic)).Int("removals", len(tombstones)).
			Msg("forgetting removals of expired dead letters failed; a later scan tries again")
	}
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// scanTopic calls fn for every record of every partition of topic, from the oldest retained
// offset to the end offset when the scan starts, partition by partition, and returns each
// partition's oldest retained offset. A missing topic has no records.
func scanTopic(ctx context.Context, client *kafkago.Client, topic string, fn func(r *protocol.Record, partition int) error) (map[int]int64, error) {
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	if len(meta.Topics) != 1 {
		return nil, nil
	}
	if terr := meta.Topics[0].Error; terr != nil {
		if errors.Is(terr, kafkago.UnknownTopicOrPartition) {
			return nil, nil
		}
		return nil, terr
	}
	var reqs []kafkago.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		reqs = append(reqs, kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	parts := offs.Topics[topic]
	slices.SortFunc(parts, func(a, b kafkago.PartitionOffsets) int { return cmp.Compare(a.Partition, b.Partition) })
	first := make(map[int]int64, len(parts))
	for _, p := range parts {
		if p.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, p.Error)
		}
		first[p.Partition] = p.FirstOffset
		if err := scanPartition(ctx, client, topic, p.Partition, p.FirstOffset, p.LastOffset, fn); err != nil {
			return nil, fmt.Errorf("partition %d: %w", p.Partition, err)
		}
	}
	return first, nil
}

// scanPartition calls fn for the records of one partition in [from, end).
func scanPartition(ctx context.Context, client *kafkago.Client, topic string, partition int, from, end int64, fn func(r *protocol.Record, partition int) error) error {
	for next, empty := from, 0; next < end; {
		res, err := client.Fetch(ctx, &kafkago.FetchRequest{
			Topic: topic, Partition: partition, Offset: next,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: scanFetchWait,
		})
		if err != nil {
			return err
		}
		if res.Error != nil {
			return res.Error
		}
		before := next
		for {
			r, err := res.Records.ReadRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if r.Offset < next || r.Offset >= end {
				continue // the start of a batch before next, or records after the scan began
			}
			if err := fn(r, partition); err != nil {
				return err
			}
			next = r.Offset + 1
		}
		if next == before {
			// Nothing at next: a gap (compaction, transaction markers) up to the high watermark,
			// or the records are gone. Give up after a few tries rather than spin.
			if empty++; empty >= 3 || res.HighWatermark <= next {
				return nil
			}
		}
	}
	return nil
}
