package sqs_test

import (
	"sync"
	"testing"
	"time"
)

// TestTwoSubscribersGetEveryHeldMessage publishes fewer messages than two subscribers can
// hold together and holds each one received: every message reaches one of them at once,
// none waits for a visibility timeout.
func TestTwoSubscribersGetEveryHeldMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, width := range []int{4, 16} {
		queue, _ := b.queues(t, 0)
		cfg := subscriberConfig(b)
		cfg.MaxInFlight = width
		cfg.WaitTime = 20 * time.Second
		var mu sync.Mutex
		got := map[string]int{}
		for w := range 2 {
			ch := subscribe(t, newSubscriber(t, cfg), queue)
			go func() {
				for m := range ch {
					mu.Lock()
					got[m.UUID] = w
					mu.Unlock()
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		publishN(t, newPublisher(t, b), queue, 8)
		defer func() { t.Logf("width %d: 8 held after %s: %v", width, time.Since(start), got) }()
		waitFor(t, 8*time.Second, "8 messages held", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == 8
		})
	}
}
