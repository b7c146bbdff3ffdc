package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// RunPace runs the conformance suite of a pipeline.PaceStore. open returns two stores on one
// backing store, standing for two processes of a fleet; model names are unique per subtest,
// so the backing store may be shared between subtests.
func RunPace(t *testing.T, open func(t *testing.T) (a, b pipeline.PaceStore)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b pipeline.PaceStore, model string)
	}{
		{"AMissingPaceIsZero", testPaceMissing},
		{"ASwapRoundTripsAcrossStores", testPaceRoundTrip},
		{"AStaleVersionWritesNothing", testPaceStale},
		{"OnlyOneCreateWins", testPaceCreateOnce},
		{"ConcurrentSwapsLoseNoUpdate", testPaceConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, a, b, fmt.Sprintf("pace-%s-%d", tc.name, time.Now().UnixNano()))
		})
	}
}

func mustPace(t *testing.T, s pipeline.PaceStore, model string) pipeline.Pace {
	t.Helper()
	p, err := s.Pace(t.Context(), model)
	if err != nil {
		t.Fatalf("read the pace of %s: %v", model, err)
	}
	return p
}

func mustSwap(t *testing.T, s pipeline.PaceStore, model string, next pipeline.Pace) bool {
	t.Helper()
	ok, err := s.SwapPace(t.Context(), model, next)
	if err != nil {
		t.Fatalf("swap the pace of %s: %v", model, err)
	}
	return ok
}

// samplePace has every field set, times with microseconds.
func samplePace() pipeline.Pace {
	t0 := time.Unix(1_700_000_000, 123_456_000).UTC()
	return pipeline.Pace{Rate: 42.625, Base: 40.5, CutAt: t0, HoldUntil: t0.Add(30 * time.Second),
		Second: t0.Unix(), Answers: 17, PrevAnswers: 51}
}

func equalPace(a, b pipeline.Pace) bool {
	return a.Rate == b.Rate && a.Base == b.Base && a.CutAt.Equal(b.CutAt) && a.HoldUntil.Equal(b.HoldUntil) &&
		a.Second == b.Second && a.Answers == b.Answers && a.PrevAnswers == b.PrevAnswers && a.Version == b.Version
}

func testPaceMissing(t *testing.T, a, _ pipeline.PaceStore, model string) {
	if p := mustPace(t, a, model); !equalPace(p, pipeline.Pace{}) || !p.CutAt.IsZero() || !p.HoldUntil.IsZero() {
		t.Fatalf("pace of a model never paced = %+v, want the zero Pace", p)
	}
}

func testPaceRoundTrip(t *testing.T, a, b pipeline.PaceStore, model string) {
	want := samplePace()
	if !mustSwap(t, a, model, want) {
		t.Fatal("creating a pace with version 0 was refused")
	}
	want.Version = 1
	if got := mustPace(t, b, model); !equalPace(got, want) {
		t.Fatalf("the other store reads %+v, want %+v", got, want)
	}
	next := want
	next.Rate, next.Answers, next.HoldUntil = 0, 0, time.Time{}
	if !mustSwap(t, b, model, next) {
		t.Fatal("a swap from the current version was refused")
	}
	next.Version = 2
	if got := mustPace(t, a, model); !equalPace(got, next) || !got.HoldUntil.IsZero() {
		t.Fatalf("after the second swap the first store reads %+v, want %+v (a zero time stays zero)", got, next)
	}
	if got := mustPace(t, a, model+"-other"); got.Version != 0 {
		t.Fatalf("another model reads version %d, want 0: models are kept apart", got.Version)
	}
}

func testPaceStale(t *testing.T, a, b pipeline.PaceStore, model string) {
	p := samplePace()
	if !mustSwap(t, a, model, p) {
		t.Fatal("creating a pace was refused")
	}
	p.Version = 1
	won := p
	won.Rate = 10
	if !mustSwap(t, b, model, won) {
		t.Fatal("a swap from the current version was refused")
	}
	lost := p
	lost.Rate = 99
	if mustSwap(t, a, model, lost) {
		t.Fatal("a swap from a stale version was accepted")
	}
	if got := mustPace(t, a, model); got.Rate != 10 || got.Version != 2 {
		t.Fatalf("after a refused swap the pace is %+v, want rate 10 at version 2", got)
	}
	ahead := p
	ahead.Version = 7
	if mustSwap(t, a, model, ahead) {
		t.Fatal("a swap from a version the store never had was accepted")
	}
}

func testPaceCreateOnce(t *testing.T, a, b pipeline.PaceStore, model string) {
	var wg sync.WaitGroup
	wins := make(chan float64, 8)
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if mustSwap(t, s, model, pipeline.Pace{Rate: float64(i + 1)}) {
				wins <- float64(i + 1)
			}
		})
	}
	wg.Wait()
	close(wins)
	var won []float64
	for r := range wins {
		won = append(won, r)
	}
	if len(won) != 1 {
		t.Fatalf("%d of 8 concurrent creates won, want exactly 1", len(won))
	}
	if got := mustPace(t, b, model); got.Rate != won[0] || got.Version != 1 {
		t.Fatalf("pace after the creates = %+v, want the winner's rate %v at version 1", got, won[0])
	}
}

// testPaceConcurrent: goroutines on both stores each add to the answers with read-swap loops;
// no addition is lost and the version counts every write.
func testPaceConcurrent(t *testing.T, a, b pipeline.PaceStore, model string) {
	const workers, adds = 6, 5
	var wg sync.WaitGroup
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range adds {
				for try := 0; ; try++ {
					if try > 200 {
						t.Error("a swap kept losing for 200 tries")
						return
					}
					p, err := s.Pace(t.Context(), model)
					if err != nil {
						t.Error(err)
						return
					}
					p.Answers++
					ok, err := s.SwapPace(t.Context(), model, p)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	if got := mustPace(t, a, model); got.Answers != workers*adds || got.Version != workers*adds {
		t.Fatalf("after %d read-swap additions the pace is %+v, want answers and version %d", workers*adds, got, workers*adds)
	}
}
