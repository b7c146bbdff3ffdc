package sqlite_test

import (
	"slices"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

func TestCancelledSinceFollowsCancelsAndDeletes(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := t.Context()
	now := time.Now().UTC()
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := s.Create(ctx, job(id, now)); err != nil {
			t.Fatal(err)
		}
	}
	ids, next, err := s.CancelledSince(ctx, 0)
	if err != nil || len(ids) != 0 || next != 0 {
		t.Fatalf("before any cancel: %v, %d, %v", ids, next, err)
	}
	cancel := func(id string) {
		t.Helper()
		if _, err := s.Transition(ctx, id, pipeline.Transition{To: messages.StatusCancelled}); err != nil {
			t.Fatal(err)
		}
	}
	cancel("b")
	if _, err := s.Transition(ctx, "a", pipeline.Transition{To: messages.StatusCompleted}); err != nil {
		t.Fatal(err)
	}
	cancel("c")
	ids, next, err = s.CancelledSince(ctx, 0)
	if err != nil || !slices.Equal(ids, []string{"b", "c"}) {
		t.Fatalf("after cancels: %v, %v", ids, err)
	}
	if more, same, err := s.CancelledSince(ctx, next); err != nil || len(more) != 0 || same != next {
		t.Fatalf("from %d: %v, %d, %v", next, more, same, err)
	}
	if err := s.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if ids, _, err = s.CancelledSince(ctx, 0); err != nil || !slices.Equal(ids, []string{"c"}) {
		t.Fatalf("after b was deleted: %v, %v", ids, err)
	}
}
