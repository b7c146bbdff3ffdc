package pipeline

import (
	"math/rand/v2"
	"time"
)

// Backoff defaults for job retries.
const (
	DefaultRetryInitial = time.Second
	DefaultRetryMax     = time.Minute
)

// Backoff computes the wait before a job's next attempt: exponential with full jitter,
// a random duration in [0, min(Max, Initial*2^(attempt-1))]. The zero value uses the defaults.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Delay returns the wait after the given failed attempt (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	initial := cmpDuration(b.Initial, DefaultRetryInitial)
	maxD := cmpDuration(b.Max, DefaultRetryMax)
	if attempt < 1 {
		attempt = 1
	}
	ceil := initial
	for i := 1; i < attempt && ceil < maxD; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxD)
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// cmpDuration is d, or def when d is not positive.
func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
