package kafka

import (
	"slices"
	"sync"
)

// checkpoints tracks, per partition of one topic, the offsets fetched and not yet
// committable, and the commit point: the offset after the last of an unbroken run of acked
// offsets. Offsets of a partition arrive in increasing order (with gaps where the log has
// none: transaction markers, compaction); an offset at or below the highest seen is a
// redelivery after a rebalance and is refused. It is safe for concurrent use.
type checkpoints struct {
	mu    sync.Mutex
	parts map[int]*partitionTrack
}

// partitionTrack is one partition's window of fetched offsets.
type partitionTrack struct {
	offsets []int64 // fetched offsets from head on, increasing
	acked   []bool  // parallel to offsets
	head    int     // offsets[:head] are acked and folded into next
	highest int64   // highest offset fetched, -1 before the first
	next    int64   // commit point: every fetched offset below it is acked; -1 before any
	comm    int64   // commit point last committed, -1 before any
}

func newCheckpoints() *checkpoints { return &checkpoints{parts: map[int]*partitionTrack{}} }

// add records a fetched offset and reports whether it is new. A refused offset is held or
// already acked here: handing it out again would be a duplicate.
func (c *checkpoints) add(partition int, offset int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p == nil {
		p = &partitionTrack{highest: -1, next: -1, comm: -1}
		c.parts[partition] = p
	}
	if offset <= p.highest {
		return false
	}
	p.highest = offset
	p.offsets = append(p.offsets, offset)
	p.acked = append(p.acked, false)
	return true
}

// ack marks offset done and moves the commit point over every acked offset at the front.
func (c *checkpoints) ack(partition int, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p == nil {
		return
	}
	i, ok := slices.BinarySearch(p.offsets[p.head:], offset)
	if !ok {
		return
	}
	p.acked[p.head+i] = true
	for p.head < len(p.offsets) && p.acked[p.head] {
		p.next = p.offsets[p.head] + 1
		p.head++
	}
	if p.head == len(p.offsets) {
		p.offsets, p.acked, p.head = p.offsets[:0], p.acked[:0], 0
	} else if p.head >= 1024 && p.head*2 >= len(p.offsets) {
		n := copy(p.offsets, p.offsets[p.head:])
		copy(p.acked, p.acked[p.head:])
		p.offsets, p.acked, p.head = p.offsets[:n], p.acked[:n], 0
	}
}

// due returns, per partition, the commit point to commit: those that moved since the last
// committed one.
func (c *checkpoints) due() map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[int]int64
	for id, p := range c.parts {
		if p.next > p.comm {
			if out == nil {
				out = map[int]int64{}
			}
			out[id] = p.next
		}
	}
	return out
}

// committed records that the commit points in points are stored by the group coordinator.
func (c *checkpoints) committed(points map[int]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, next := range points {
		if p := c.parts[id]; p != nil && next > p.comm {
			p.comm = next
		}
	}
}
