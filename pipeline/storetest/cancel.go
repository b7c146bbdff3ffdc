package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// testCancelledAmong checks pipeline.CancelFinder: among many ids, most of them missing, only the
// CANCELLED jobs come back, from any place in a list longer than one batch of the store.
func testCancelledAmong(t *testing.T, s pipeline.JobStore) {
	f, ok := s.(pipeline.CancelFinder)
	if !ok {
		t.Skipf("%T is not a pipeline.CancelFinder", s)
	}
	ctx := t.Context()
	for _, id := range []string{"run-a", "run-b", "run-c", "done", "queued"} {
		mustCreate(t, s, queued(id, base))
	}
	for _, id := range []string{"run-a", "run-b", "run-c"} {
		mustTransition(t, s, id, pipeline.Transition{To: messages.StatusProcessing, AttemptsDelta: 1})
	}
	mustTransition(t, s, "done", pipeline.Transition{To: messages.StatusCompleted})
	got, err := f.CancelledAmong(ctx, []string{"run-a", "run-b", "run-c", "done", "queued"})
	if err != nil || len(got) != 0 {
		t.Fatalf("CancelledAmong with nothing cancelled = %v, %v; want none", got, err)
	}
	for _, id := range []string{"run-b", "run-c", "queued"} {
		mustTransition(t, s, id, pipeline.Transition{
			From: []messages.Status{messages.StatusQueued, messages.StatusProcessing}, To: messages.StatusCancelled})
	}
	// 1,200 ids: the existing ones spread over several batches of every store.
	ids := make([]string, 0, 1200)
	for i := range 1200 {
		ids = append(ids, fmt.Sprintf("missing-%d", i))
	}
	ids[0], ids[150], ids[520], ids[999], ids[1199] = "run-a", "run-b", "done", "run-c", "queued"
	got, err = f.CancelledAmong(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"queued", "run-b", "run-c"}; !slices.Equal(got, want) {
		t.Fatalf("CancelledAmong = %v, want %v", got, want)
	}
	if got, err := f.CancelledAmong(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("CancelledAmong(nil) = %v, %v; want none", got, err)
	}
}

// testCancelWins checks what a cancel of a running job relies on: the worker's COMPLETED write,
// conditional on PROCESSING, is refused once the job is CANCELLED, and leaves it CANCELLED with
// no result_url.
func testCancelWins(t *testing.T, s pipeline.JobStore) {
	mustCreate(t, s, queued("job-1", base))
	mustTransition(t, s, "job-1", pipeline.Transition{From: []messages.Status{messages.StatusQueued},
		To: messages.StatusProcessing, AttemptsDelta: 1})
	mustTransition(t, s, "job-1", pipeline.Transition{
		From: []messages.Status{messages.StatusQueued, messages.StatusProcessing}, To: messages.StatusCancelled})
	got, err := s.Transition(t.Context(), "job-1", pipeline.Transition{
		From: []messages.Status{messages.StatusProcessing}, To: messages.StatusCompleted,
		Model: "m", ResultURL: messages.ResultPath("job-1"),
	})
	if !errors.Is(err, pipeline.ErrConflict) || got.Status != messages.StatusCancelled {
		t.Fatalf("COMPLETED after CANCELLED = %s, %v; want CANCELLED and ErrConflict", got.Status, err)
	}
	if rec := mustGet(t, s, "job-1"); rec.Status != messages.StatusCancelled || rec.ResultURL != "" {
		t.Fatalf("after a refused completion the job is %s with result_url %q; want CANCELLED without one", rec.Status, rec.ResultURL)
	}
}
