package telemetry

import "sync"

// children caches what a metric vector's WithLabelValues returns, by label values: the vector
// hashes and checks its label values on every call, several times per job. Entries are never
// dropped, as the vector's children are not (no collector here is ever Reset or Deleted from),
// so the cache holds one entry per child the vector holds. Safe for concurrent use.
type children[K comparable, T any] struct {
	make func(K) T

	mu sync.RWMutex
	m  map[K]T
}

func newChildren[K comparable, T any](make func(K) T) *children[K, T] {
	return &children[K, T]{make: make, m: map[K]T{}}
}

// get returns the child for k, made on first use.
func (c *children[K, T]) get(k K) T {
	c.mu.RLock()
	t, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok = c.m[k]; !ok {
		t = c.make(k)
		c.m[k] = t
	}
	return t
}
