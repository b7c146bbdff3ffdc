package models

import (
	"testing"
	"time"
)

// Spend counts for the UTC day of the call that spent it, and a call on a later day starts
// the day's spend afresh.
func TestStatsSpendTodayStartsAfreshEachUTCDay(t *testing.T) {
	now := time.Date(2026, 12, 7, 23, 59, 0, 0, time.FixedZone("east", 3*3600)) // 20:59 UTC
	s := newStats()
	s.now = func() time.Time { return now }
	s.record(time.Millisecond, true, false, 10, 10, 0.25)
	s.record(time.Millisecond, true, false, 10, 10, 0.5)
	if got := s.snapshot().SpendToday; got != 0.75 {
		t.Fatalf("spend today = %v, want 0.75", got)
	}
	now = now.Add(2 * time.Hour) // 01:59 local, still 22:59 UTC on the 7th
	if got := s.snapshot().SpendToday; got != 0.75 {
		t.Fatalf("spend later the same UTC day = %v, want 0.75", got)
	}
	now = now.Add(time.Hour + time.Minute) // 00:00 UTC on the 8th
	if got := s.snapshot().SpendToday; got != 0 {
		t.Fatalf("spend on the next UTC day before any call = %v, want 0", got)
	}
	s.record(time.Millisecond, true, false, 10, 10, 1)
	if got := s.snapshot().SpendToday; got != 1 {
		t.Fatalf("spend on the next UTC day = %v, want 1", got)
	}
	now = time.Date(2027, 1, 8, 0, 0, 0, 0, time.UTC) // a month on, the same day of the month
	if got := s.snapshot().SpendToday; got != 0 {
		t.Fatalf("spend a month on = %v, want 0", got)
	}
}
