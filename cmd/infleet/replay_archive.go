package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/infleet/infleet/adapters/eventbridge"
	"github.com/infleet/infleet/config"
)

// archiveReplay is what `infleet replay --archive` was asked for.
type archiveReplay struct {
	archive    string
	configPath string
	since      time.Duration
	from, to   string
	name       string
	poll       time.Duration
}

// runArchiveReplay starts an EventBridge replay of an archive onto notify.eventbridge.bus and
// follows it to its end: exit 0 when it COMPLETED, 1 when it failed or could not start, 2 when
// the flags or the config are missing something.
func runArchiveReplay(a archiveReplay, environ []string, stdout, stderr io.Writer) int {
	from, to, err := archiveRange(a, time.Now())
	if err != nil {
		return usageError(stderr, "replay", "%v", err)
	}
	cfg, err := config.Load(a.configPath, environ)
	if err != nil {
		return configError(stderr, "replay", err)
	}
	bus := cfg.Notify.EventBridge.Bus
	if bus == "" {
		return usageError(stderr, "replay", "--archive replays onto the EventBridge bus of notify.eventbridge.bus, and none is set: "+
			"give --config with notify.eventbridge.bus, or set INFLEET_NOTIFY_EVENTBRIDGE_BUS")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client, err := newAWSClients(cfg).eventBridge(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "infleet replay:", err)
		return 1
	}
	name := a.name
	if name == "" {
		name = "infleet-" + time.Now().UTC().Format("20060102-150405")
	}
	r := eventbridge.NewReplayer(client)
	spec := eventbridge.ReplaySpec{Name: name, Archive: a.archive, Bus: bus, From: from, To: to}
	if err := r.Start(ctx, spec); err != nil {
		fmt.Fprintln(stderr, "infleet replay:", err)
		return 1
	}
	fmt.Fprintf(stderr, "EventBridge replay %s of archive %s started: events from %s to %s onto bus %s\n",
		name, a.archive, from.Format(time.RFC3339), to.Format(time.RFC3339), bus)
	st, err := r.Wait(ctx, name, a.poll, func(s eventbridge.ReplayStatus) {
		fmt.Fprintf(stderr, "\rreplay %s: %-10s %3.0f%%", name, s.State, 100*s.Fraction())
	})
	fmt.Fprintln(stderr)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "infleet replay: stopped following; the replay goes on in EventBridge (aws events describe-replay --replay-name %s)\n", name)
			return 1
		}
		fmt.Fprintln(stderr, "infleet replay:", err)
		return 1
	}
	fmt.Fprintf(stdout, "replay %s: %s (events from %s to %s replayed onto %s)\n", name, st.State,
		from.Format(time.RFC3339), to.Format(time.RFC3339), bus)
	return 0
}

// archiveRange reads the time range of an archive replay from --since or --from and --to.
func archiveRange(a archiveReplay, now time.Time) (from, to time.Time, err error) {
	switch {
	case a.since > 0 && (a.from != "" || a.to != ""):
		return from, to, errors.New("give --since or --from/--to, not both")
	case a.since > 0:
		return now.Add(-a.since), now, nil
	case a.from == "" || a.to == "":
		return from, to, errors.New("--archive needs the time range of the events to replay: --from RFC3339 --to RFC3339 (or --since DURATION)")
	}
	if from, err = time.Parse(time.RFC3339, a.from); err != nil {
		return from, to, fmt.Errorf("--from %q is not an RFC 3339 time such as 2026-11-23T10:00:00Z", a.from)
	}
	if to, err = time.Parse(time.RFC3339, a.to); err != nil {
		return from, to, fmt.Errorf("--to %q is not an RFC 3339 time such as 2026-11-23T12:00:00Z", a.to)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("--from %s is not before --to %s", a.from, a.to)
	}
	return from, to, nil
}
