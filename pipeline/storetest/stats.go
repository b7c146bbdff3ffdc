package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// statsReader returns s as a pipeline.StatsReader, or skips t: the ability is optional.
func statsReader(t *testing.T, s pipeline.JobStore) pipeline.StatsReader {
	t.Helper()
	r, ok := s.(pipeline.StatsReader)
	if !ok {
		t.Skipf("%T is not a pipeline.StatsReader", s)
	}
	return r
}

// testJobStats places jobs before, in and after a three-minute window and checks each minute's
// accepted, completed and failed counts, the completed jobs' latency percentiles and the live
// counts.
func testJobStats(t *testing.T, s pipeline.JobStore) {
	r := statsReader(t, s)
	t0 := base.UTC().Truncate(time.Minute)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	job := func(id string, created time.Time, to messages.Status, updated time.Time) {
		t.Helper()
		mustCreate(t, s, queued(id, created))
		if to == messages.StatusProcessing || to.Terminal() {
			mustTransition(t, s, id, pipeline.Transition{To: to, At: updated})
		}
	}
	job("a", at(10*time.Second), messages.StatusCompleted, at(12*time.Second))
	job("b", at(20*time.Second), messages.StatusCompleted, at(70*time.Second))
	job("c", at(65*time.Second), messages.StatusFailed, at(130*time.Second))
	job("d", at(70*time.Second), messages.StatusProcessing, at(71*time.Second))
	job("e", at(125*time.Second), messages.StatusQueued, time.Time{})
	job("f", at(-5*time.Minute), messages.StatusCompleted, at(30*time.Second))
	job("g", at(3*time.Minute+time.Second), messages.StatusQueued, time.Time{})
	job("h", at(126*time.Second), messages.StatusCancelled, at(127*time.Second))
	job("i", at(-2*time.Minute), messages.StatusCompleted, at(-time.Minute))

	got, err := r.JobStats(t.Context(), at(0), at(3*time.Minute))
	if err != nil {
		t.Fatalf("JobStats: %v", err)
	}
	want := pipeline.JobStats{Queued: 2, Processing: 1, Buckets: []pipeline.StatsBucket{
		{Start: at(0), Accepted: 2, Completed: 2, LatencyP50: 2 * time.Second, LatencyP95: 5*time.Minute + 30*time.Second},
		{Start: at(time.Minute), Accepted: 2, Completed: 1, LatencyP50: 50 * time.Second, LatencyP95: 50 * time.Second},
		{Start: at(2 * time.Minute), Accepted: 2, Failed: 1},
	}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("JobStats:\n got %+v\nwant %+v", got, want)
	}

	// A window that starts mid-minute begins at its minute; an empty one has zero buckets.
	got, err = r.JobStats(t.Context(), at(90*time.Second), at(150*time.Second))
	if err != nil {
		t.Fatalf("JobStats: %v", err)
	}
	if len(got.Buckets) != 2 || !got.Buckets[0].Start.Equal(at(time.Minute)) || got.Buckets[1].Failed != 1 {
		t.Fatalf("mid-minute window: %+v", got.Buckets)
	}
	got, err = r.JobStats(t.Context(), at(time.Hour), at(time.Hour+time.Minute))
	if err != nil {
		t.Fatalf("JobStats: %v", err)
	}
	if len(got.Buckets) != 1 || got.Buckets[0] != (pipeline.StatsBucket{Start: at(time.Hour)}) {
		t.Fatalf("empty window: %+v", got.Buckets)
	}
}
