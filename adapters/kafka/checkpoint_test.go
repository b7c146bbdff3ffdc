package kafka

import (
	"maps"
	"testing"
)

func TestCheckpointsHoldAtFirstUnacked(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	for _, off := range []int64{10, 11, 13, 14} { // 12 is a gap in the log (a transaction marker)
		if !c.add(0, off) {
			t.Fatalf("offset %d refused", off)
		}
	}
	c.ack(0, 11)
	c.ack(0, 14)
	if d := c.due(); len(d) != 0 {
		t.Fatalf("due %v with offset 10 unacked; want nothing", d)
	}
	c.ack(0, 10)
	if d := c.due(); d[0] != 12 {
		t.Fatalf("due %v; want partition 0 at 12 (10 and 11 acked, 13 not)", d)
	}
	c.committed(map[int]int64{0: 12})
	if d := c.due(); len(d) != 0 {
		t.Fatalf("due %v right after commit; want nothing", d)
	}
	c.ack(0, 13)
	if d := c.due(); d[0] != 15 {
		t.Fatalf("due %v; want 15 across the gap", d)
	}
}

func TestCheckpointsRefuseRefetched(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	c.add(1, 5)
	c.add(1, 6)
	c.ack(1, 5)
	// A rebalance rewinds the reader to the last committed offset.
	for _, off := range []int64{5, 6} {
		if c.add(1, off) {
			t.Fatalf("refetched offset %d accepted; it is acked or held already", off)
		}
	}
	if !c.add(1, 7) {
		t.Fatal("new offset 7 refused")
	}
	if !c.add(2, 5) {
		t.Fatal("offset 5 of another partition refused")
	}
	if d := c.due(); !maps.Equal(d, map[int]int64{1: 6}) {
		t.Fatalf("due %v; want only partition 1 at 6", d)
	}
}

func TestCheckpointsCompactLongWindow(t *testing.T) {
	t.Parallel()
	c := newCheckpoints()
	for off := range int64(5000) {
		c.add(0, off)
	}
	c.ack(0, 4999)
	for off := range int64(4000) {
		c.ack(0, off)
	}
	if d := c.due(); d[0] != 4000 {
		t.Fatalf("due %v; want 4000", d)
	}
	for off := int64(4000); off < 4999; off++ {
		c.ack(0, off)
	}
	if d := c.due(); d[0] != 5000 {
		t.Fatalf("due %v; want 5000", d)
	}
}
