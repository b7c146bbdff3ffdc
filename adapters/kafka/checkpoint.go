package kafka

import (
	"slices"
	"sync"
)

// checkpoints tracks, per partition of one topic, the offsets fetched and not yet
// committable, and the commit point: the offset after the last of an unbroken run of acked
// offsets. Offsets of a partition arrive in increasing order (with gaps where the log has
// none: transaction markers, compaction); an offset at or below the highest seen is a
// redelivery and is refused. Each partition's window carries an epoch: when the group takes
// the partition away, keep drops the window, and acks of offsets fetched under the old
// epoch are ignored, so they are never committed. It is safe for concurrent use.
type checkpoints struct {
	mu     sync.Mutex
	parts  map[int]*partitionTrack
	epochs uint64 // the last epoch given out
}

// partitionTrack is one partition's window of fetched offsets.
type partitionTrack struct {
	epoch   uint64  // the window's identity: a dropped and re-created window gets another
	offsets []int64 // fetched offsets from head on, increasing
	acked   []bool  // parallel to offsets
	head    int     // offsets[:head] are acked and folded into next
	highest int64   // highest offset fetched, -1 before the first
	next    int64   // commit point: every fetched offset below it is acked; -1 before any
	comm    int64   // commit point last committed, -1 before any
}

func newCheckpoints() *checkpoints { return &checkpoints{parts: map[int]*partitionTrack{}} }

// add records a fetched offset and returns the epoch to answer it under, and whether it is
// new. A refused offset is held or already acked here: handing it out again would be a
// duplicate.
func (c *checkpoints) add(partition int, offset int64) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p == nil {
		c.epochs++
		p = &partitionTrack{epoch: c.epochs, highest: -1, next: -1, comm: -1}
		c.parts[partition] = p
	}
	if offset <= p.highest {
		return 0, false
	}
	p.highest = offset
	p.offsets = append(p.offsets, offset)
	p.acked = append(p.acked, false)
	return p.epoch, true
}

// unfetch takes back offset, the last one add accepted for partition under epoch, when it
// was not handed out after all: a later fetch may add it again.
func (c *checkpoints) unfetch(partition int, offset int64, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p == nil || p.epoch != epoch || p.highest != offset || len(p.offsets) == p.head {
		return
	}
	n := len(p.offsets) - 1
	p.offsets, p.acked = p.offsets[:n], p.acked[:n]
	p.highest = offset - 1 // the offsets between the one before and this one are gaps
}

// current reports whether epoch is still partition's: its answers still count.
func (c *checkpoints) current(partition int, epoch uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	return p != nil && p.epoch == epoch
}

// resume returns where to fetch partition from to go on after its highest fetched offset,
// and false when no window is kept for it.
func (c *checkpoints) resume(partition int) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p == nil || p.highest < 0 {
		return 0, false
	}
	return p.highest + 1, true
}

// keep drops the window of every partition not in partitions (nil drops all): answers to
// their offsets are ignored from now on, and a later add starts a window under a new epoch.
func (c *checkpoints) keep(partitions map[int]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.parts {
		if !partitions[id] {
			delete(c.parts, id)
		}
	}
}

// ack marks offset done and moves the commit point over every acked offset at the front.
// An ack under an epoch that is no longer partition's is ignored.
func (c *checkpoints) ack(partition int, offset int64, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p == nil || p.epoch != epoch {
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
