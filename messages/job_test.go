package messages

import (
	"testing"
	"time"
)

func TestNackDelay(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{{"", 0, true}, {"250ms", 250 * time.Millisecond, true}, {"-1s", 0, false}, {"soon", 0, false}} {
		md := map[string]string{}
		if c.v != "" {
			md[MetaNackDelay] = c.v
		}
		if d, ok := NackDelay(md); d != c.want || ok != c.ok {
			t.Errorf("NackDelay(%q) = %s, %v; want %s, %v", c.v, d, ok, c.want, c.ok)
		}
	}
}
