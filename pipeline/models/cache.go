package models

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"sync"
	"time"

	"github.com/infleet/infleet/pipeline"
)

// Cache defaults.
const DefaultCacheEntries = 10000

// Cache is an exact-match response cache: the key hashes the model, system prompt, messages
// and parameters; entries live for a TTL and the least recently used go first when full. Safe
// for concurrent use.
type Cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu    sync.Mutex
	ll    *list.List
	items map[string]*list.Element
}

type cacheEntry struct {
	key     string
	resp    pipeline.ModelResponse
	expires time.Time
}

// NewCache returns a cache holding up to maxEntries (default 10000) for ttl each; ttl <= 0
// returns nil, a cache that holds nothing.
func NewCache(ttl time.Duration, maxEntries int) *Cache {
	if ttl <= 0 {
		return nil
	}
	return &Cache{ttl: ttl, max: cmpPos(maxEntries, DefaultCacheEntries), now: time.Now, ll: list.New(), items: map[string]*list.Element{}}
}

// Get returns the cached response for key.
func (c *Cache) Get(key string) (pipeline.ModelResponse, bool) {
	if c == nil {
		return pipeline.ModelResponse{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return pipeline.ModelResponse{}, false
	}
	e := el.Value.(*cacheEntry)
	if c.now().After(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return pipeline.ModelResponse{}, false
	}
	c.ll.MoveToFront(el)
	return e.resp, true
}

// Put stores resp under key for the TTL.
func (c *Cache) Put(key string, resp pipeline.ModelResponse) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = &cacheEntry{key: key, resp: resp, expires: c.now().Add(c.ttl)}
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key: key, resp: resp, expires: c.now().Add(c.ttl)})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// CacheKey hashes everything that decides a model's answer: the configured model name, the
// provider's model id, the task, system prompt, messages and parameters, each length-prefixed.
func CacheKey(model string, req pipeline.ModelRequest) string {
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	f := func(p *float64) {
		if p == nil {
			write("")
			return
		}
		binary.BigEndian.PutUint64(n[:], math.Float64bits(*p))
		write(string(n[:]))
	}
	write(model)
	write(req.ModelID)
	write(req.Task)
	write(req.System)
	for _, m := range req.Messages {
		write(m.Role)
		write(m.Content)
	}
	binary.BigEndian.PutUint64(n[:], uint64(req.Params.MaxTokens))
	write(string(n[:]))
	f(req.Params.Temperature)
	f(req.Params.TopP)
	for _, s := range req.Params.Stop {
		write(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}
