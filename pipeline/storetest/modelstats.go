package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// RunModelStats runs the conformance suite of a pipeline.ModelStatsStore. open returns two
// stores on one backing store, standing for two processes of a fleet; model names are unique
// per subtest, so the backing store may be shared between subtests.
func RunModelStats(t *testing.T, open func(t *testing.T) (a, b pipeline.ModelStatsStore)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b pipeline.ModelStatsStore, model string)
	}{
		{"EveryProcessReadsEveryProcess", testModelStatsAcross},
		{"APutReplacesTheProcessTotals", testModelStatsReplace},
		{"ReadsOnlyTheModelsAndMinutesAsked", testModelStatsFilter},
		{"ConcurrentProcessesKeepTheirOwn", testModelStatsConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, a, b, fmt.Sprintf("m-%s-%d", tc.name, time.Now().UnixNano()))
		})
	}
}

// statsMinute is a recent minute: stores may drop figures older than ModelStatsKeep.
func statsMinute() time.Time { return time.Now().UTC().Truncate(pipeline.ModelStatsStep) }

func figures(model, process string, minute time.Time, calls int64) pipeline.ModelFigures {
	var h pipeline.ModelLatency
	for i := range calls {
		h.Add(time.Duration(20+i*300) * time.Millisecond)
	}
	return pipeline.ModelFigures{
		Model: model, Process: process, Minute: minute,
		Calls: calls, Errors: calls / 2, Throttles: calls / 3, InputTokens: 10 * calls, OutputTokens: 7 * calls,
		Latency: h, Circuit: "closed", Seen: minute.Add(17*time.Second + 250*time.Millisecond),
	}
}

func mustPut(t *testing.T, s pipeline.ModelStatsStore, process string, f ...pipeline.ModelFigures) {
	t.Helper()
	if err := s.PutModelStats(t.Context(), process, f); err != nil {
		t.Fatalf("put model stats of %s: %v", process, err)
	}
}

func mustRead(t *testing.T, s pipeline.ModelStatsStore, models []string, since time.Time) []pipeline.ModelFigures {
	t.Helper()
	out, err := s.ModelStats(t.Context(), models, since)
	if err != nil {
		t.Fatalf("read model stats: %v", err)
	}
	slices.SortFunc(out, func(x, y pipeline.ModelFigures) int {
		return cmp.Or(strings.Compare(x.Model, y.Model), x.Minute.Compare(y.Minute), strings.Compare(x.Process, y.Process))
	})
	return out
}

func requireFigures(t *testing.T, want, got pipeline.ModelFigures) {
	t.Helper()
	got.Minute, got.Seen = got.Minute.UTC(), got.Seen.UTC()
	want.Minute, want.Seen = want.Minute.UTC(), want.Seen.UTC()
	if got != want {
		t.Fatalf("figures read back\n got %+v\nwant %+v", got, want)
	}
}

func testModelStatsAcross(t *testing.T, a, b pipeline.ModelStatsStore, model string) {
	m := statsMinute()
	p1 := figures(model, "p1", m, 9)
	p2 := figures(model, "p2", m, 4)
	p2.Circuit = "open"
	mustPut(t, a, "p1", p1)
	mustPut(t, b, "p2", p2)
	for _, s := range []pipeline.ModelStatsStore{a, b} {
		got := mustRead(t, s, []string{model}, m)
		if len(got) != 2 {
			t.Fatalf("read %d figures, want 2 (one per process): %+v", len(got), got)
		}
		requireFigures(t, p1, got[0])
		requireFigures(t, p2, got[1])
	}
}

func testModelStatsReplace(t *testing.T, a, b pipeline.ModelStatsStore, model string) {
	m := statsMinute()
	mustPut(t, a, "p1", figures(model, "p1", m, 3))
	later := figures(model, "p1", m, 5)
	later.Circuit, later.Seen = "half_open", later.Seen.Add(time.Second)
	mustPut(t, a, "p1", later)
	got := mustRead(t, b, []string{model}, m)
	if len(got) != 1 {
		t.Fatalf("read %d figures, want 1: %+v", len(got), got)
	}
	requireFigures(t, later, got[0])
}

func testModelStatsFilter(t *testing.T, a, b pipeline.ModelStatsStore, model string) {
	m := statsMinute()
	old := figures(model, "p1", m.Add(-10*time.Minute), 2)
	recent := figures(model, "p1", m.Add(-time.Minute), 3)
	now := figures(model, "p1", m, 1)
	other := figures(model+"-other", "p1", m, 8)
	mustPut(t, a, "p1", old, recent, now, other)
	got := mustRead(t, b, []string{model}, m.Add(-time.Minute+time.Second))
	if len(got) != 2 {
		t.Fatalf("read %d figures, want the 2 minutes since the one before last of %s only: %+v", len(got), model, got)
	}
	requireFigures(t, recent, got[0])
	requireFigures(t, now, got[1])
	got = mustRead(t, b, []string{model, model + "-other"}, m.Add(-time.Hour))
	if len(got) != 4 {
		t.Fatalf("read %d figures of two models over the hour, want 4: %+v", len(got), got)
	}
	if got := mustRead(t, a, []string{model + "-none"}, m.Add(-time.Hour)); len(got) != 0 {
		t.Fatalf("a model never written has figures: %+v", got)
	}
}

func testModelStatsConcurrent(t *testing.T, a, b pipeline.ModelStatsStore, model string) {
	m := statsMinute()
	const processes, writes = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, processes*writes)
	for p := range processes {
		s := a
		if p%2 == 1 {
			s = b
		}
		name := fmt.Sprintf("p%d", p)
		wg.Go(func() {
			for w := range writes {
				if err := s.PutModelStats(t.Context(), name, []pipeline.ModelFigures{figures(model, name, m, int64(p*10+w+1))}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := mustRead(t, a, []string{model}, m)
	if len(got) != processes {
		t.Fatalf("read %d figures, want one per process (%d): %+v", len(got), processes, got)
	}
	for p, f := range got {
		requireFigures(t, figures(model, fmt.Sprintf("p%d", p), m, int64(p*10+writes)), f)
	}
}
