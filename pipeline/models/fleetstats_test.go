package models_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/sqlite"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/models"
)

// TestFleetReportsMergeEveryProcess: two Fleets publishing to one SQLite file stand for two
// worker processes; the merged reports count the calls of both, show the circuit one of them
// opened, and drop a process once it stops writing.
func TestFleetReportsMergeEveryProcess(t *testing.T) {
	t.Parallel()
	policy := fastPolicy()
	policy.MaxAttempts = 1
	policy.Breaker = models.BreakerConfig{Failures: 2, OpenFor: time.Minute}
	b := setup(t, map[string]fmsim.Faults{
		"ok":  {Latency: fmsim.Latency{P50: 30 * time.Millisecond}},
		"bad": {ErrorRate: 1},
	}, policy)
	path := filepath.Join(t.TempDir(), "stats.db")
	const interval = 50 * time.Millisecond
	var stores []*sqlite.Limits
	var stops []func()
	var fleets []*models.Fleet
	for i := range 2 {
		store, err := sqlite.OpenLimits(t.Context(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		f, err := models.NewFleet(models.FleetConfig{Policy: policy, Models: []models.ModelSpec{
			{Name: "ok", ModelID: "ok", Client: b.client(t, "ok"), Timeout: 2 * time.Second},
			{Name: "bad", ModelID: "bad", Client: b.client(t, "bad"), Timeout: 2 * time.Second},
		}})
		if err != nil {
			t.Fatal(err)
		}
		stop := f.PublishStats(models.StatsConfig{Store: store, Process: "p" + itoa(i), Interval: interval})
		t.Cleanup(stop)
		stores, stops, fleets = append(stores, store), append(stops, stop), append(fleets, f)
	}
	for i := range 10 {
		if _, err := fleets[i%3/2].Client("ok").Invoke(t.Context(), request("q "+itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := fleets[1].Client("bad").Invoke(t.Context(), request("b "+itoa(i))); err == nil {
			t.Fatal("a call to a model failing every call succeeded")
		}
	}
	base := []models.Report{{Name: "bad"}, {Name: "ok", Limits: models.Limits{RPM: 600}}}
	read := func() []models.Report {
		now := time.Now()
		figs, err := stores[0].ModelStats(t.Context(), []string{"bad", "ok"}, models.FleetStatsSince(now))
		if err != nil {
			t.Fatal(err)
		}
		return models.FleetReports(base, figs, now, models.StaleIntervals*interval)
	}
	var got []models.Report
	waitUntil(t, func() bool {
		got = read()
		return got[1].Calls == 10 && got[0].Calls == 2 && got[0].Circuits.Processes == 2
	}, func() string { return "the fleet reports never counted every call: " + fmtReports(got) })

	ok, bad := got[1], got[0]
	if ok.Scope != models.ScopeFleet || len(ok.Processes) != 2 || ok.Processes[0].Calls+ok.Processes[1].Calls != 10 ||
		ok.Processes[0].Calls == 0 || ok.Processes[1].Calls == 0 {
		t.Errorf("model ok: want calls of both processes (10 in all): %s", fmtReports(got))
	}
	if ok.P50Ms < 10 || ok.P95Ms < ok.P50Ms || ok.ErrorRate != 0 || ok.CallsPerMinute < 10 || ok.Limits.RPM != 600 {
		t.Errorf("model ok: want p50 near 30ms, no errors, 10+ calls a minute and its limits kept: %s", fmtReports(got))
	}
	if bad.Circuit != "open" || bad.Circuits.Open != 1 || bad.Circuits.Closed != 1 || bad.ErrorRate != 1 {
		t.Errorf("model bad: want open on 1 of 2 processes and every call failed: %s", fmtReports(got))
	}

	stops[1]()
	waitUntil(t, func() bool {
		got = read()
		return got[0].Circuits.Processes == 1
	}, func() string { return "a process that stopped writing was never dropped: " + fmtReports(got) })
	if got[0].Circuit != "closed" || got[0].Calls != 2 {
		t.Errorf("after p1 stopped: want model bad closed (only p0 is live) and its 2 calls (the third met the open circuit) still counted: %s", fmtReports(got))
	}
}

// TestFleetReportsCallsPerMinuteSlide: calls per minute are this minute's plus the share of
// the last minute's that the last 60 seconds still cover; older minutes count only in the
// window's totals.
func TestFleetReportsCallsPerMinuteSlide(t *testing.T) {
	t.Parallel()
	cur := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	now := cur.Add(15 * time.Second)
	fig := func(minute time.Time, calls int64, process, circuit string, seen time.Time) pipeline.ModelFigures {
		return pipeline.ModelFigures{Model: "m", Process: process, Minute: minute, Calls: calls, InputTokens: 10 * calls,
			Circuit: circuit, Seen: seen}
	}
	figs := []pipeline.ModelFigures{
		fig(cur.Add(-10*time.Minute), 1000, "a", "open", cur.Add(-9*time.Minute)), // outside the window
		fig(cur.Add(-3*time.Minute), 7, "a", "closed", cur.Add(-2*time.Minute)),
		fig(cur.Add(-time.Minute), 40, "a", "closed", cur),
		fig(cur, 5, "a", "half_open", now.Add(-time.Second)),
		fig(cur, 3, "b", "open", now.Add(-10*time.Second)), // stale
	}
	r := models.FleetReports([]models.Report{{Name: "m"}}, figs, now, 3*time.Second)[0]
	if r.Calls != 55 || r.CallsPerMinute != 8+30 || r.TokensPerMinute != 80+300 {
		t.Errorf("calls %d (want 55), per minute %d (want 38), tokens per minute %d (want 380)", r.Calls, r.CallsPerMinute, r.TokensPerMinute)
	}
	if r.Circuit != "half_open" || r.Circuits.Processes != 1 || len(r.Processes) != 1 || r.Processes[0].Process != "a" {
		t.Errorf("want the live process a only, half open: %s", fmtReports([]models.Report{r}))
	}
}

func fmtReports(rs []models.Report) string {
	s := ""
	for _, r := range rs {
		s += "\n  " + r.Name + ": circuit " + r.Circuit + " calls " + itoa(r.Calls)
		if r.Circuits != nil {
			s += " processes " + itoa(r.Circuits.Processes) + " open " + itoa(r.Circuits.Open)
		}
		for _, p := range r.Processes {
			s += " [" + p.Process + " " + p.Circuit + " " + itoa(int(p.Calls)) + "]"
		}
	}
	return s
}

// waitUntil polls cond for up to 5 seconds and fails with msg's text when it never holds.
func waitUntil(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOverlayFiguresPrefersTheFreshOnes: a process's figures in memory replace its stored
// ones of the same model and minute, and leave the rest.
func TestOverlayFiguresPrefersTheFreshOnes(t *testing.T) {
	t.Parallel()
	m := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	stored := []pipeline.ModelFigures{
		{Model: "x", Process: "me", Minute: m, Calls: 1},
		{Model: "x", Process: "me", Minute: m.Add(-time.Minute), Calls: 4},
		{Model: "x", Process: "other", Minute: m, Calls: 2},
	}
	mine := []pipeline.ModelFigures{{Model: "x", Process: "me", Minute: m, Calls: 3}}
	r := models.FleetReports([]models.Report{{Name: "x"}}, models.OverlayFigures(stored, mine), m.Add(time.Second), time.Hour)[0]
	if r.Calls != 3+4+2 {
		t.Errorf("calls %d, want 9: the fresh 3 in place of the stored 1, beside the rest", r.Calls)
	}
}
