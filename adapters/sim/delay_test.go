package sim

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestDelayPercentiles(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Latency: 20 * time.Millisecond},
		{Dist: DistUniform, Latency: 100 * time.Millisecond, P99: 190 * time.Millisecond},
		{Dist: DistNormal, Latency: 100 * time.Millisecond, P99: 150 * time.Millisecond},
		{Dist: DistLognormal, Latency: 100 * time.Millisecond, P99: 900 * time.Millisecond},
	} {
		c := New(cfg)
		const n = 20000
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = c.delay(uint64(i + 1))
		}
		slices.Sort(d)
		p50, p99 := d[n/2], d[n*99/100]
		want99 := max(cfg.P99, cfg.Latency)
		if math.Abs(float64(p50-cfg.Latency)) > 0.05*float64(cfg.Latency) || math.Abs(float64(p99-want99)) > 0.05*float64(want99) {
			t.Errorf("%q: p50 %s p99 %s, want about %s and %s", cfg.Dist, p50, p99, cfg.Latency, want99)
		}
	}
}
