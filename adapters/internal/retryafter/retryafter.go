// Package retryafter reads the wait an HTTP server asks a client to keep before it retries:
// the standard Retry-After header and the millisecond variants that model providers send
// (retry-after-ms, x-amz-retry-after). Every adapter that calls an HTTP server uses it, so the
// header is read one way everywhere.
package retryafter

import (
	"net/http"
	"strconv"
	"time"
)

// maxSeconds bounds a readable wait (about 31 years), so that no value overflows a Duration.
const maxSeconds = 1e9

// Parse reads a Retry-After value (RFC 9110, section 10.2.3): a number of seconds (a fraction is
// accepted) or an HTTP date, taken relative to now. ok is false when v is empty, unreadable or
// a negative number; a date in the past is a wait of 0.
func Parse(v string, now time.Time) (wait time.Duration, ok bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if !(s >= 0 && s <= maxSeconds) {
			return 0, false // negative, NaN, or past any sensible wait
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// FromHeader returns the wait h asks for: the first of msHeaders that holds a positive number
// of milliseconds, else Retry-After as Parse reads it. It returns 0 when there is none.
func FromHeader(h http.Header, now time.Time, msHeaders ...string) time.Duration {
	for _, name := range msHeaders {
		if ms, err := strconv.ParseFloat(h.Get(name), 64); err == nil && ms > 0 && ms <= maxSeconds*1000 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	wait, _ := Parse(h.Get("Retry-After"), now)
	return wait
}
