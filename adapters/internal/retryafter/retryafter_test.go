package retryafter_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/internal/retryafter"
)

func TestFromHeader(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		ms   []string
		want time.Duration
	}{
		{http.Header{}, nil, 0},
		{http.Header{"Retry-After": {"3"}}, nil, 3 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, nil, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"-4"}}, nil, 0},
		{http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, nil, 7 * time.Second},
		{http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, nil, 0},
		{http.Header{"Retry-After": {"soon"}}, nil, 0},
		{http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"250"}}, []string{"Retry-After-Ms"}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"0"}}, []string{"Retry-After-Ms"}, 3 * time.Second},
		{http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"x"}}, []string{"Retry-After-Ms"}, 3 * time.Second},
		{http.Header{"X-Amz-Retry-After": {"1200"}}, []string{"X-Amz-Retry-After"}, 1200 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"250"}}, nil, 0},
		{http.Header{"Retry-After": {"2"}, "Retry-After-Ms": {"Inf"}}, []string{"Retry-After-Ms"}, 2 * time.Second},
	} {
		if got := retryafter.FromHeader(tc.h, now, tc.ms...); got != tc.want {
			t.Errorf("FromHeader(%v, %v) = %s, want %s", tc.h, tc.ms, got, tc.want)
		}
	}
}

func TestParseReportsAbsence(t *testing.T) {
	for _, v := range []string{"", "later", "1e", "-5", "NaN", "Inf", "1e300"} {
		if _, ok := retryafter.Parse(v, time.Now()); ok {
			t.Errorf("Parse(%q) ok, want not", v)
		}
	}
	if d, ok := retryafter.Parse("0", time.Now()); !ok || d != 0 {
		t.Errorf("Parse(0) = %s, %v", d, ok)
	}
}
