package models

import (
	"testing"
	"time"

	"github.com/infleet/infleet/pipeline"
)

func TestBreakerStatesWithAClock(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	var changes []int
	b := NewBreaker(BreakerConfig{Failures: 2, OpenFor: time.Second}, func(s int) { changes = append(changes, s) })
	b.now = func() time.Time { return now }
	for range 2 {
		if err := b.Allow(); err != nil {
			t.Fatal(err)
		}
		b.Done(false)
	}
	if b.Allow() != ErrCircuitOpen {
		t.Fatal("want open after 2 failures")
	}
	now = now.Add(time.Second)
	if err := b.Allow(); err != nil {
		t.Fatalf("half-open probe refused: %v", err)
	}
	if b.Allow() != ErrCircuitOpen {
		t.Fatal("a second probe was let through while the first runs")
	}
	b.Done(true)
	if b.State() != StateClosed {
		t.Fatalf("state %d after a good probe, want closed", b.State())
	}
	want := []int{StateOpen, StateHalfOpen, StateClosed}
	if len(changes) != 3 || changes[0] != want[0] || changes[1] != want[1] || changes[2] != want[2] {
		t.Errorf("changes %v, want %v", changes, want)
	}
}

func TestCacheExpiresAndEvicts(t *testing.T) {
	t.Parallel()
	c := NewCache(time.Minute, 2)
	now := time.Unix(0, 0)
	c.now = func() time.Time { return now }
	c.Put("a", pipeline.ModelResponse{Text: "A"})
	c.Put("b", pipeline.ModelResponse{Text: "B"})
	c.Get("a")
	c.Put("c", pipeline.ModelResponse{Text: "C"})
	if _, ok := c.Get("b"); ok {
		t.Error("b, the least recently used, was not evicted")
	}
	if r, ok := c.Get("a"); !ok || r.Text != "A" {
		t.Error("a was lost")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := c.Get("a"); ok {
		t.Error("a outlived its TTL")
	}
	if NewCache(0, 0) != nil {
		t.Error("a zero TTL must turn the cache off")
	}
}

func TestBackoffIsFullJitterUnderTheCeiling(t *testing.T) {
	t.Parallel()
	p := Policy{BackoffBase: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond}
	for attempt, ceil := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond, 9: 40 * time.Millisecond} {
		for range 200 {
			if d := backoff(p, attempt); d < 0 || d > ceil {
				t.Fatalf("attempt %d: %s outside [0, %s]", attempt, d, ceil)
			}
		}
	}
}

func TestDetectLanguage(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Hello, world":      "latin",
		"你好，世界":             "zh",
		"こんにちは世界":           "ja",
		"안녕하세요":             "ko",
		"Привет, мир":       "cyrillic",
		"مرحبا بالعالم":     "arabic",
		"12345 !!":          "",
		"Hello Привет мир!": "cyrillic",
	} {
		if got := DetectLanguage(in); got != want {
			t.Errorf("DetectLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSemver(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"1.2", "1.2.x", "01.2.3", "1.2.3-rc1", ""} {
		if _, err := parseSemver(bad); err == nil {
			t.Errorf("parseSemver(%q) accepted", bad)
		}
	}
	a, _ := parseSemver("1.10.0")
	b, _ := parseSemver("1.9.9")
	if compareSemver(a, b) <= 0 {
		t.Error("1.10.0 must sort after 1.9.9")
	}
}
