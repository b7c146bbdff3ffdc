package pipeline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

func TestSlowFollowerNeverHoldsUpTheWriterNorMissesText(t *testing.T) {
	t.Parallel()
	hub := pipeline.NewHub()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	slow := hub.Follow(ctx, "j", 0) // not read until the answer is written
	st, end := hub.StartStream("j")
	var want strings.Builder
	start := time.Now()
	for i := range 10000 {
		piece := strings.Repeat("x", i%7) + " "
		st.Write(piece)
		want.WriteString(piece)
	}
	end()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("10000 writes took %s with a follower that reads nothing", d)
	}
	var got strings.Builder
	pieces := 0
	for text := range slow { // closed once the ended attempt's text is all sent
		got.WriteString(text)
		pieces++
	}
	if got.String() != want.String() {
		t.Fatalf("slow follower got %d bytes, want %d", got.Len(), want.Len())
	}
	if pieces > 10 {
		t.Errorf("slow follower got %d pieces, want the backlog coalesced", pieces)
	}
	// The stream was dropped with its last follower: a later one waits for a new attempt.
	late := hub.Follow(ctx, "j", 0)
	st2, end2 := hub.StartStream("j")
	st2.Write("again")
	end2()
	if text := <-late; text != "again" {
		t.Errorf("late follower got %q, want the new attempt's text", text)
	}
}
