package ops

import (
	"testing"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storetest"
)

func TestMemoryReplaysConformance(t *testing.T) {
	t.Parallel()
	m := &memReplays{}
	storetest.RunReplays(t, func(t *testing.T) (a, b pipeline.ReplayStore) { return m, m })
}

func TestReplayFiltersDiffer(t *testing.T) {
	t.Parallel()
	base := replayFilters{Since: "2h0m0s", Task: "summarize", JobIDs: []string{"b", "a"}}
	for _, tc := range []struct {
		change func(*replayFilters)
		want   string
	}{
		{func(*replayFilters) {}, ""},
		{func(f *replayFilters) { f.JobIDs = []string{"a", "b", "a"} }, ""},
		{func(f *replayFilters) { f.Rate = 5 }, ""},
		{func(f *replayFilters) { f.Since = "1h0m0s" }, "since"},
		{func(f *replayFilters) { f.Task = "classify" }, "task"},
		{func(f *replayFilters) { f.Status = "FAILED" }, "status"},
		{func(f *replayFilters) { f.JobIDs = []string{"a"} }, "job_ids"},
	} {
		g := base
		tc.change(&g)
		if got := base.differs(g); got != tc.want {
			t.Errorf("differs(%+v) = %q, want %q", g, got, tc.want)
		}
	}
}
