package fmsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestRPMQuotaThrottlesPastTheWindowAndSaysWhenToRetry(t *testing.T) {
	t.Parallel()
	const window = 300 * time.Millisecond
	s := New(Config{Models: map[string]Faults{"q": {RPM: 5, RPMWindow: window}}})
	var start time.Time // after the first call: the oldest call is no younger
	for i := range 5 {
		if rec := call(t, s, "q", "hi"); rec.Code != http.StatusOK {
			t.Fatalf("call %d: status %d, want 200 within the quota", i, rec.Code)
		}
		if i == 0 {
			start = time.Now()
		}
	}
	sixth := time.Now() // the quota's clock reads no earlier than this for the sixth call
	rec := call(t, s, "q", "hi")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("sixth call: status %d, want 429 past the quota", rec.Code)
	}
	ms, err := strconv.Atoi(rec.Header().Get("Retry-After-Ms"))
	if err != nil || ms <= 0 || time.Duration(ms)*time.Millisecond > window-sixth.Sub(start)+time.Millisecond {
		t.Fatalf("Retry-After-Ms %q: want the time until the oldest call leaves the %s window", rec.Header().Get("Retry-After-Ms"), window)
	}
	if rec := call(t, s, "other", "hi"); rec.Code != http.StatusOK {
		t.Fatalf("another model: status %d, want 200 (quotas are per model)", rec.Code)
	}
	time.Sleep(time.Duration(ms) * time.Millisecond)
	if rec := call(t, s, "q", "hi"); rec.Code != http.StatusOK {
		t.Fatalf("after Retry-After: status %d, want 200", rec.Code)
	}
	if st := s.Stats(); st.ByModelOutcome["q"][OutcomeThrottled] != 1 || st.ByModelOutcome["q"][OutcomeOK] != 6 {
		t.Errorf("outcomes %v, want 6 ok and 1 throttled", st.ByModelOutcome["q"])
	}
}

func TestStatsReportPeakInFlightAndCallsPerSecond(t *testing.T) {
	t.Parallel()
	s := New(Config{Faults: Faults{Latency: Latency{P50: 100 * time.Millisecond}}})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { call(t, s, "m", "hi") })
	}
	wg.Wait()
	call(t, s, "m", "hi")
	var st Stats
	if err := json.Unmarshal(do(t, s, http.MethodGet, "/stats", "").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.MaxInFlight != 4 {
		t.Errorf("max_in_flight %d, want 4", st.MaxInFlight)
	}
	var sum int64
	for _, n := range st.PerSecond {
		sum += n
	}
	if sum != 5 {
		t.Errorf("per_second %v sums to %d, want 5 calls", st.PerSecond, sum)
	}
	s.ResetStats()
	if st := s.Stats(); st.MaxInFlight != 0 || len(st.PerSecond) != 0 {
		t.Errorf("after reset: max_in_flight %d, per_second %v, want none", st.MaxInFlight, st.PerSecond)
	}
}

func TestFaultsJSONCarriesTheQuota(t *testing.T) {
	t.Parallel()
	var f Faults
	if err := json.Unmarshal([]byte(`{"rpm":120,"rpm_window":"2s"}`), &f); err != nil || f.RPM != 120 || f.RPMWindow != 2*time.Second {
		t.Fatalf("faults %+v, err %v", f, err)
	}
	if err := json.Unmarshal([]byte(`{"rpm":-1}`), &f); err == nil {
		t.Error("rpm -1 was accepted")
	}
}
