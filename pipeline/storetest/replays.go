package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// RunReplays runs the conformance suite of a pipeline.ReplayStore. open returns two stores on
// one backing store, standing for two processes of a fleet; replay names and tenants are
// unique per subtest, so the backing store may be shared between subtests and tests.
func RunReplays(t *testing.T, open func(t *testing.T) (a, b pipeline.ReplayStore)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b pipeline.ReplayStore, name string)
	}{
		{"AMissingReplayIsNotFound", testReplayMissing},
		{"AStartReadsBackFromTheOther", testReplayRoundTrip},
		{"AStartOfARunningNameKeepsIt", testReplayStartRunning},
		{"OnlyTheHolderWritesProgress", testReplayProgress},
		{"ListsTheLatestFirstUpToLimit", testReplayList},
		{"AnExpiredLeaseIsTakenOver", testReplayTakeover},
		{"OnlyOneClaimWins", testReplayClaimOnce},
		{"OnlyOneStartWins", testReplayStartOnce},
		{"OldReplaysAreForgotten", testReplayForget},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, a, b, fmt.Sprintf("replay-%s-%d", tc.name, time.Now().UnixNano()))
		})
	}
}

// sampleReplay is a running replay of name held by process "a" for an hour after t0, times
// with microseconds.
func sampleReplay(name string) pipeline.Replay {
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	return pipeline.Replay{Name: name, Tenant: "tenant-" + name, Filters: `{"task":"summarize","from":"2026-11-23T09:00:00Z"}`,
		Matched: 12, StartedAt: t0, UpdatedAt: t0, Process: "a", LeaseUntil: t0.Add(time.Hour)}
}

func equalReplay(x, y pipeline.Replay) bool {
	return x.Name == y.Name && x.Tenant == y.Tenant && x.Filters == y.Filters && x.Matched == y.Matched &&
		x.Published == y.Published && x.Cursor == y.Cursor && x.Done == y.Done && x.Error == y.Error &&
		x.DryRun == y.DryRun && x.StartedAt.Equal(y.StartedAt) && x.UpdatedAt.Equal(y.UpdatedAt) &&
		x.Process == y.Process && x.LeaseUntil.Equal(y.LeaseUntil)
}

func mustStart(t *testing.T, s pipeline.ReplayStore, r pipeline.Replay) (pipeline.Replay, bool) {
	t.Helper()
	cur, started, err := s.StartReplay(t.Context(), r)
	if err != nil {
		t.Fatalf("start replay %s: %v", r.Name, err)
	}
	return cur, started
}

func mustGetReplay(t *testing.T, s pipeline.ReplayStore, name string) pipeline.Replay {
	t.Helper()
	r, err := s.GetReplay(t.Context(), name)
	if err != nil {
		t.Fatalf("get replay %s: %v", name, err)
	}
	return r
}

func mustSave(t *testing.T, s pipeline.ReplayStore, r pipeline.Replay) bool {
	t.Helper()
	ok, err := s.SaveReplay(t.Context(), r)
	if err != nil {
		t.Fatalf("save replay %s: %v", r.Name, err)
	}
	return ok
}

func mustClaim(t *testing.T, s pipeline.ReplayStore, name, process string, now, until time.Time) (pipeline.Replay, bool) {
	t.Helper()
	r, ok, err := s.ClaimReplay(t.Context(), name, process, now, until)
	if err != nil {
		t.Fatalf("claim replay %s: %v", name, err)
	}
	return r, ok
}

func testReplayMissing(t *testing.T, a, _ pipeline.ReplayStore, name string) {
	if _, err := a.GetReplay(t.Context(), name); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("get a replay never started: %v, want ErrNotFound", err)
	}
	now := time.Now()
	if _, _, err := a.ClaimReplay(t.Context(), name, "b", now, now.Add(time.Minute)); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("claim a replay never started: %v, want ErrNotFound", err)
	}
	if mustSave(t, a, sampleReplay(name)) {
		t.Fatal("saving a replay never started wrote it")
	}
	if _, err := a.GetReplay(t.Context(), name); !errors.Is(err, pipeline.ErrNotFound) {
		t.Fatalf("after a refused save: %v, want ErrNotFound", err)
	}
}

func testReplayRoundTrip(t *testing.T, a, b pipeline.ReplayStore, name string) {
	r := sampleReplay(name)
	r.Error = "job x: archived body: bad"
	cur, started := mustStart(t, a, r)
	if !started || !equalReplay(cur, r) {
		t.Fatalf("start = %+v, %v; want %+v, true", cur, started, r)
	}
	if got := mustGetReplay(t, b, name); !equalReplay(got, r) {
		t.Fatalf("read from the other store = %+v, want %+v", got, r)
	}
}

func testReplayStartRunning(t *testing.T, a, b pipeline.ReplayStore, name string) {
	first := sampleReplay(name)
	mustStart(t, a, first)
	second := sampleReplay(name)
	second.Filters, second.Process = `{"task":"classify"}`, "b"
	cur, started := mustStart(t, b, second)
	if started || !equalReplay(cur, first) {
		t.Fatalf("second start of a running replay = %+v, %v; want the first, false", cur, started)
	}
	// Also when its lease ran out: an interrupted replay is continued, not replaced.
	expired := first
	expired.LeaseUntil = first.StartedAt.Add(-time.Second)
	if !mustSave(t, a, expired) {
		t.Fatal("the holder could not save")
	}
	if _, started := mustStart(t, b, second); started {
		t.Fatal("a start replaced an interrupted replay")
	}
	done := expired
	done.Done, done.Published, done.Matched = true, 12, 12
	if !mustSave(t, a, done) {
		t.Fatal("the holder could not finish")
	}
	cur, started = mustStart(t, b, second)
	if !started || !equalReplay(cur, second) {
		t.Fatalf("start over a finished replay = %+v, %v; want %+v, true", cur, started, second)
	}
	if got := mustGetReplay(t, a, name); !equalReplay(got, second) {
		t.Fatalf("after the restart = %+v, want %+v", got, second)
	}
}

func testReplayProgress(t *testing.T, a, b pipeline.ReplayStore, name string) {
	r := sampleReplay(name)
	mustStart(t, a, r)
	r.Published, r.Cursor, r.UpdatedAt = 5, "2026-11-23T09:00:05Z/job-5", r.UpdatedAt.Add(time.Second)
	r.LeaseUntil = r.LeaseUntil.Add(time.Second)
	if !mustSave(t, a, r) {
		t.Fatal("the holder could not save its progress")
	}
	if got := mustGetReplay(t, b, name); !equalReplay(got, r) {
		t.Fatalf("progress read from the other store = %+v, want %+v", got, r)
	}
	other := r
	other.Process, other.Published = "b", 9
	if mustSave(t, b, other) {
		t.Fatal("a process not holding the replay saved its progress")
	}
	r.Published, r.Cursor, r.Done, r.Error = 12, "2026-11-23T09:00:12Z/job-12", true, "queue unreachable"
	if !mustSave(t, a, r) {
		t.Fatal("the holder could not finish")
	}
	if got := mustGetReplay(t, b, name); !equalReplay(got, r) {
		t.Fatalf("finished = %+v, want %+v", got, r)
	}
}

func testReplayList(t *testing.T, a, b pipeline.ReplayStore, name string) {
	base := sampleReplay(name)
	var names []string
	for i := range 3 {
		r := base
		r.Name = fmt.Sprintf("%s-%d", name, i)
		r.StartedAt = base.StartedAt.Add(time.Duration(i) * time.Second)
		mustStart(t, a, r)
		names = append(names, r.Name)
	}
	other := base
	other.Name, other.Tenant = name+"-other", "other-"+name
	mustStart(t, a, other)
	list := func(tenant string, limit int) []string {
		rs, err := b.Replays(t.Context(), tenant, limit)
		if err != nil {
			t.Fatalf("list replays: %v", err)
		}
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.Name
		}
		return out
	}
	if got := list(base.Tenant, 2); fmt.Sprint(got) != fmt.Sprint([]string{names[2], names[1]}) {
		t.Fatalf("the latest 2 = %v, want %v", got, []string{names[2], names[1]})
	}
	if got := list(base.Tenant, 10); fmt.Sprint(got) != fmt.Sprint([]string{names[2], names[1], names[0]}) {
		t.Fatalf("all of the tenant = %v", got)
	}
	all := list("", pipeline.ReplaysMaxList)
	seen := map[string]bool{}
	for _, n := range all {
		seen[n] = true
	}
	for _, n := range append(names, other.Name) {
		if !seen[n] {
			t.Fatalf("replay %s missing from the list of every tenant (%d listed)", n, len(all))
		}
	}
	rs, err := b.Replays(t.Context(), base.Tenant, 1)
	if err != nil || len(rs) != 1 || rs[0].Matched != base.Matched || rs[0].Filters != base.Filters {
		t.Fatalf("a listed replay = %+v, %v; want the whole record", rs, err)
	}
}

func testReplayTakeover(t *testing.T, a, b pipeline.ReplayStore, name string) {
	r := sampleReplay(name)
	mustStart(t, a, r)
	now := r.StartedAt
	if _, ok := mustClaim(t, b, name, "b", now, now.Add(time.Minute)); ok {
		t.Fatal("a replay was claimed while its lease held")
	}
	later := r.LeaseUntil.Add(time.Second)
	got, ok := mustClaim(t, b, name, "b", later, later.Add(15*time.Second))
	if !ok || got.Process != "b" || !got.LeaseUntil.Equal(later.Add(15*time.Second)) || got.Matched != r.Matched {
		t.Fatalf("claim after expiry = %+v, %v", got, ok)
	}
	r.Published = 3
	if mustSave(t, a, r) {
		t.Fatal("the process that lost the replay still saved its progress")
	}
	got.Published, got.Done = 12, true
	if !mustSave(t, b, got) {
		t.Fatal("the new holder could not save")
	}
	if r := mustGetReplay(t, a, name); r.Process != "b" || !r.Done || r.Published != 12 {
		t.Fatalf("after the takeover = %+v", r)
	}
	farther := later.Add(time.Hour)
	if _, ok := mustClaim(t, a, name, "a", farther, farther.Add(time.Minute)); ok {
		t.Fatal("a finished replay was claimed")
	}
}

func testReplayClaimOnce(t *testing.T, a, b pipeline.ReplayStore, name string) {
	r := sampleReplay(name)
	r.LeaseUntil = r.StartedAt
	mustStart(t, a, r)
	now := r.StartedAt.Add(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i := range 8 {
		wg.Go(func() {
			s, process := a, fmt.Sprintf("p%d", i)
			if i%2 == 1 {
				s = b
			}
			got, ok, err := s.ClaimReplay(t.Context(), name, process, now, now.Add(time.Minute))
			if err != nil {
				t.Errorf("claim: %v", err)
				return
			}
			if ok {
				mu.Lock()
				winners = append(winners, got.Process)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d claims won (%v), want 1", len(winners), winners)
	}
	if got := mustGetReplay(t, b, name); got.Process != winners[0] {
		t.Fatalf("held by %s, but %s won the claim", got.Process, winners[0])
	}
}

func testReplayStartOnce(t *testing.T, a, b pipeline.ReplayStore, name string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	for i := range 8 {
		wg.Go(func() {
			s, r := a, sampleReplay(name)
			r.Process = fmt.Sprintf("p%d", i)
			if i%2 == 1 {
				s = b
			}
			cur, started, err := s.StartReplay(t.Context(), r)
			if err != nil {
				t.Errorf("start: %v", err)
				return
			}
			if started {
				mu.Lock()
				winners = append(winners, cur.Process)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d starts won (%v), want 1", len(winners), winners)
	}
	if got := mustGetReplay(t, b, name); got.Process != winners[0] {
		t.Fatalf("held by %s, but %s won the start", got.Process, winners[0])
	}
}

// testReplayForget starts three replays two days back: one finished, one unfinished whose
// lease ran out a day and a half ago, one unfinished whose lease runs still; and one now.
// Forgetting those older than a day deletes the first two only, from reads and from the list;
// forgetting again deletes nothing.
func testReplayForget(t *testing.T, a, b pipeline.ReplayStore, name string) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := now.Add(-48 * time.Hour)
	mk := func(suffix string, updated, lease time.Time, done bool) pipeline.Replay {
		r := sampleReplay(name + "-" + suffix)
		r.StartedAt, r.UpdatedAt, r.LeaseUntil, r.Done = updated, updated, lease, done
		if _, started, err := a.StartReplay(t.Context(), r); err != nil || !started {
			t.Fatalf("start %s: started %v, %v", r.Name, started, err)
		}
		return r
	}
	finished := mk("finished", old, old, true)
	abandoned := mk("abandoned", old, now.Add(-36*time.Hour), false)
	leased := mk("leased", old, now.Add(time.Hour), false)
	recent := mk("recent", now, now.Add(time.Hour), false)
	n, err := b.ForgetReplays(t.Context(), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatalf("forget: %v", err)
	}
	// Other subtests run beside this one on the same store, all with replays of now.
	if n != 2 {
		t.Errorf("forgot %d replays, want 2 (the finished and the abandoned one)", n)
	}
	for _, r := range []pipeline.Replay{finished, abandoned} {
		if _, err := a.GetReplay(t.Context(), r.Name); !errors.Is(err, pipeline.ErrNotFound) {
			t.Errorf("%s after it was forgotten: %v, want ErrNotFound", r.Name, err)
		}
	}
	for _, r := range []pipeline.Replay{leased, recent} {
		if _, err := a.GetReplay(t.Context(), r.Name); err != nil {
			t.Errorf("%s was forgotten or lost: %v", r.Name, err)
		}
	}
	list, err := a.Replays(t.Context(), finished.Tenant, pipeline.ReplaysMaxList)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if r.Name == finished.Name || r.Name == abandoned.Name {
			t.Errorf("the list still holds %s", r.Name)
		}
	}
	if n, err := b.ForgetReplays(t.Context(), now.Add(-24*time.Hour)); err != nil || n != 0 {
		t.Errorf("forget again: %d, %v; want 0", n, err)
	}
}
