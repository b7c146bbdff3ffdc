package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	kafkago "github.com/segmentio/kafka-go"
)

// QueueDepth returns how many messages of topic wait for this subscriber's group: per
// partition, the log end offset less the group's committed offset (or less the oldest
// retained offset where the group has committed none), summed. Messages handed out and not
// yet committed count as waiting. It implements pipeline.DepthReporter and is safe for
// concurrent use. A retry topic (topic+RetrySuffix) counts against the retry group.
func (s *Subscriber) QueueDepth(ctx context.Context, topic string) (int64, error) {
	group := s.cfg.Group
	if !s.cfg.MemoryRetries && strings.HasSuffix(topic, s.cfg.RetrySuffix) {
		group += s.cfg.RetrySuffix
	}
	client := s.client()
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: %w", topic, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		if len(meta.Topics) == 1 {
			err = meta.Topics[0].Error
		}
		return 0, fmt.Errorf("queue depth of %s: no such topic (create it with infleet init): %v", topic, err)
	}
	var partitions []int
	var reqs []kafkago.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		partitions = append(partitions, p.ID)
		reqs = append(reqs, kafkago.FirstOffsetOf(p.ID), kafkago.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: list offsets: %w", topic, err)
	}
	committed, err := client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err != nil {
		return 0, fmt.Errorf("queue depth of %s: fetch group %s offsets: %w", topic, group, err)
	}
	if committed.Error != nil && !errors.Is(committed.Error, kafkago.GroupIdNotFound) {
		return 0, fmt.Errorf("queue depth of %s: fetch group %s offsets: %w", topic, group, committed.Error)
	}
	at := map[int]int64{} // an unknown group has committed nothing
	for _, p := range committed.Topics[topic] {
		if p.Error == nil && p.CommittedOffset >= 0 {
			at[p.Partition] = p.CommittedOffset
		}
	}
	var depth int64
	for _, p := range offs.Topics[topic] {
		if p.Error != nil {
			return 0, fmt.Errorf("queue depth of %s: partition %d: %w", topic, p.Partition, p.Error)
		}
		from, ok := at[p.Partition]
		if !ok || from < p.FirstOffset {
			from = p.FirstOffset
		}
		depth += max(p.LastOffset-from, 0)
	}
	return depth, nil
}
