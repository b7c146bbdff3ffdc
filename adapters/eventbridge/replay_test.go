package eventbridge_test

import (
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/eventbridge"
	"github.com/infleet/infleet/adapters/eventbridge/ebtest"
)

var (
	from = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	to   = time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
)

func TestReplayRunsToCompletion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.AddArchive("jobs-archive", "jobs")
	r := eventbridge.NewReplayer(b.client)
	ctx := ctxT(t)
	err := r.Start(ctx, eventbridge.ReplaySpec{Name: "rp-1", Archive: "jobs-archive", Bus: "jobs", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := b.srv.Replay("rp-1")
	if !ok || got.ArchiveARN != ebtest.ArchiveARN("jobs-archive") || got.DestinationARN != ebtest.BusARN("jobs") ||
		!got.From.Equal(from) || !got.To.Equal(to) {
		t.Fatalf("replay started as %+v", got)
	}
	var states []string
	var fractions []float64
	st, err := r.Wait(ctx, "rp-1", time.Millisecond, func(s eventbridge.ReplayStatus) {
		states = append(states, s.State)
		fractions = append(fractions, s.Fraction())
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(states, ",") != "STARTING,RUNNING,COMPLETED" {
		t.Fatalf("states seen %v", states)
	}
	if fractions[0] != 0 || fractions[1] != 0.5 || fractions[2] != 1 {
		t.Errorf("progress %v, want 0, 0.5, 1", fractions)
	}
	if st.State != eventbridge.ReplayCompleted || !st.Done() || st.EndedAt.IsZero() || !st.LastReplayed.Equal(to) {
		t.Errorf("final status %+v", st)
	}
}

func TestReplayByARNDefaultsToTheArchivesBus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	arn := b.srv.AddArchive("a1", "jobs")
	r := eventbridge.NewReplayer(b.client)
	if err := r.Start(ctxT(t), eventbridge.ReplaySpec{Name: "rp-2", Archive: arn, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.srv.Replay("rp-2"); got.DestinationARN != ebtest.BusARN("jobs") {
		t.Fatalf("destination %s, want the archive's bus", got.DestinationARN)
	}
	for _, target := range b.srv.Targets() {
		if target == "AWSEvents.DescribeEventBus" {
			t.Error("resolved a bus that was not given")
		}
	}
}

func TestReplayFailureCarriesTheReason(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.AddArchive("jobs-archive", "jobs")
	b.srv.Script = []ebtest.Step{{State: "STARTING"}, {State: "FAILED", Reason: "the destination rule is disabled"}}
	r := eventbridge.NewReplayer(b.client)
	ctx := ctxT(t)
	if err := r.Start(ctx, eventbridge.ReplaySpec{Name: "rp-3", Archive: "jobs-archive", Bus: "jobs", From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	st, err := r.Wait(ctx, "rp-3", time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), `replay "rp-3" failed: the destination rule is disabled`) {
		t.Fatalf("wait: %v, want the failure reason", err)
	}
	if st.State != eventbridge.ReplayFailed || !st.Done() {
		t.Fatalf("final status %+v", st)
	}
}

func TestReplayStartErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.AddArchive("jobs-archive", "jobs")
	b.srv.AddBus("other")
	r := eventbridge.NewReplayer(b.client)
	ctx := ctxT(t)
	if err := r.Start(ctx, eventbridge.ReplaySpec{Name: "dup", Archive: "jobs-archive", From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec eventbridge.ReplaySpec
		want string
	}{
		{"no archive", eventbridge.ReplaySpec{Name: "x", Archive: "gone", From: from, To: to}, `EventBridge archive "gone" does not exist`},
		{"no bus", eventbridge.ReplaySpec{Name: "x", Archive: "jobs-archive", Bus: "gone", From: from, To: to}, `EventBridge bus "gone" does not exist`},
		{"other bus", eventbridge.ReplaySpec{Name: "x", Archive: "jobs-archive", Bus: "other", From: from, To: to}, "a replay goes back to the archive's own bus"},
		{"empty range", eventbridge.ReplaySpec{Name: "x", Archive: "jobs-archive", From: to, To: from}, "the time range"},
		{"no name", eventbridge.ReplaySpec{Archive: "jobs-archive", From: from, To: to}, "no name"},
		{"taken name", eventbridge.ReplaySpec{Name: "dup", Archive: "jobs-archive", From: from, To: to}, `replay named "dup" exists already`},
	}
	for _, c := range cases {
		if err := r.Start(ctx, c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.want)
		}
	}
	if _, err := r.Wait(ctx, "never-started", time.Millisecond, nil); err == nil || !strings.Contains(err.Error(), `replay "never-started" does not exist`) {
		t.Errorf("wait for a missing replay: %v", err)
	}
}
