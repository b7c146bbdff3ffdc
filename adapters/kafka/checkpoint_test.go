package kafka

import (
	"maps"
	"testing"
)

// add records offsets of partition and returns their epoch, failing on a refusal.
func add(t *testing.T, c *checkpoints, partition int, offsets ...int64) uint64 {
	t.Helper()
	var epoch uint64
	for _, off := range offsets {
		e, ok := c.add(partition, off)
		if !ok {
			t.Fatalf("offset %d of partition %d refused", off, partition)
		}
		epoch = e
	}
	return epoch
}

func TestCheckpointsHoldAtFirstUnacked(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	e := add(t, c, 0, 10, 11, 13, 14) // 12 is a gap in the log (a transaction marker)
	c.ack(0, 11, e)
	c.ack(0, 14, e)
	if d := c.due(); len(d) != 0 {
		t.Fatalf("due %v with offset 10 unacked; want nothing", d)
	}
	c.ack(0, 10, e)
	if d := c.due(); d[0] != 12 {
		t.Fatalf("due %v; want partition 0 at 12 (10 and 11 acked, 13 not)", d)
	}
	c.committed(map[int]int64{0: 12})
	if d := c.due(); len(d) != 0 {
		t.Fatalf("due %v right after commit; want nothing", d)
	}
	c.ack(0, 13, e)
	if d := c.due(); d[0] != 15 {
		t.Fatalf("due %v; want 15 across the gap", d)
	}
}

func TestCheckpointsRefuseRefetched(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	e := add(t, c, 1, 5, 6)
	c.ack(1, 5, e)
	// A partition reader starting again from the last committed offset.
	for _, off := range []int64{5, 6} {
		if _, ok := c.add(1, off); ok {
			t.Fatalf("refetched offset %d accepted; it is acked or held already", off)
		}
	}
	add(t, c, 1, 7)
	add(t, c, 2, 5)
	if d := c.due(); !maps.Equal(d, map[int]int64{1: 6}) {
		t.Fatalf("due %v; want only partition 1 at 6", d)
	}
	if next, ok := c.resume(1); !ok || next != 8 {
		t.Fatalf("resume at %d, %v; want 8 (after the highest fetched)", next, ok)
	}
}

func TestCheckpointsDropIgnoresStaleAcks(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	e0 := add(t, c, 0, 0, 1, 2)
	e1 := add(t, c, 1, 0, 1)
	c.ack(1, 0, e1)
	c.keep(map[int]bool{1: true}) // partition 0 moved to another member
	if c.current(0, e0) || !c.current(1, e1) {
		t.Fatal("partition 0's epoch is still current, or kept partition 1's is not")
	}
	c.ack(0, 0, e0)
	c.ack(0, 1, e0)
	if d := c.due(); !maps.Equal(d, map[int]int64{1: 1}) {
		t.Fatalf("due %v; want only kept partition 1 at 1", d)
	}
	// Partition 0 comes back: a new window, read from the committed offset; the old
	// epoch's acks do not count in it.
	if _, ok := c.resume(0); ok {
		t.Fatal("a dropped partition resumes from its old window")
	}
	e0b := add(t, c, 0, 0, 1)
	if e0b == e0 {
		t.Fatal("a re-created window has the old epoch")
	}
	c.ack(0, 0, e0)
	if d := c.due(); d[0] != 0 {
		t.Fatalf("due %v after an ack under the old epoch; want partition 0 not due", d)
	}
	c.ack(0, 0, e0b)
	if d := c.due(); d[0] != 1 {
		t.Fatalf("due %v; want partition 0 at 1", d)
	}
	c.keep(nil)
	if d := c.due(); len(d) != 0 {
		t.Fatalf("due %v after dropping all; want nothing", d)
	}
}

func TestCheckpointsUnfetch(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	e := add(t, c, 0, 3, 4)
	c.unfetch(0, 4, e) // not handed out after all
	if next, _ := c.resume(0); next != 4 {
		t.Fatalf("resume at %d; want 4", next)
	}
	add(t, c, 0, 4)
	c.ack(0, 3, e)
	c.ack(0, 4, e)
	if d := c.due(); d[0] != 5 {
		t.Fatalf("due %v; want 5", d)
	}
}

func TestCheckpointsCompactLongWindow(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	var e uint64
	for off := range int64(5000) {
		e = add(t, c, 0, off)
	}
	c.ack(0, 4999, e)
	for off := range int64(4000) {
		c.ack(0, off, e)
	}
	if d := c.due(); d[0] != 4000 {
		t.Fatalf("due %v; want 4000", d)
	}
	for off := int64(4000); off < 4999; off++ {
		c.ack(0, off, e)
	}
	if d := c.due(); d[0] != 5000 {
		t.Fatalf("due %v; want 5000", d)
	}
}
