package pipeline_test

import (
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// TestUsageDayIsTheUTCDay checks UsageDay against formatting each time itself, across day
// boundaries in both directions, time zones and times before the epoch, in an order that
// makes the kept day change at every step.
func TestUsageDayIsTheUTCDay(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("far east", 14*3600)
	base := time.Date(2026, 12, 6, 23, 59, 59, 999999999, time.UTC)
	times := []time.Time{
		base, base.Add(time.Nanosecond), base, base.In(zone), base.Add(time.Nanosecond).In(zone),
		time.Unix(0, 0), time.Unix(-1, 0), time.Unix(-86400, 0), time.Unix(-86401, 0), time.Unix(86399, 0),
		time.Date(1969, 12, 31, 0, 0, 0, 1, time.UTC), base.AddDate(-100, 0, 0), base,
	}
	for _, at := range times {
		if got, want := pipeline.UsageDay(at), at.UTC().Format(pipeline.UsageDayLayout); got != want {
			t.Errorf("UsageDay(%v) = %s, want %s", at, got, want)
		}
	}
}
