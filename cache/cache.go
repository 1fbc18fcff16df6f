package cache

import (
	"context"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/casfs/casfs/chunkstore"
)

// DefaultPrefetch is how many prefetches may be in flight at once unless
// the cache is told otherwise (SetPrefetchLimit).
const DefaultPrefetch = 16

// Cache is a bytes-bounded LRU of chunks with one fetch per chunk at a time.
type Cache struct {
	max int64

	mu   sync.Mutex
	lru  *simplelru.LRU[chunkstore.ID, []byte]
	size int64
	// inflight holds the fetch under way for each chunk being fetched:
	// a Get of such a chunk waits for it, a Prefetch of it does nothing.
	inflight map[chunkstore.ID]*call
	// prefetching counts the inflight calls Prefetch started; at
	// prefetchMax, Prefetch starts no more.
	prefetching, prefetchMax int
	// Hits and Misses count lookups, for tests and stats.
	hits, misses int64
}

// call is one fetch of one chunk. val and err are set before done closes.
type call struct {
	done     chan struct{}
	val      []byte
	err      error
	prefetch bool // started by Prefetch: counts in prefetching
	removed  bool // Remove came while in flight: do not cache the result
}

// New returns a cache holding at most maxBytes of chunk data.
func New(maxBytes int64) *Cache {
	c := &Cache{max: maxBytes, inflight: map[chunkstore.ID]*call{}, prefetchMax: DefaultPrefetch}
	// The entry count is unbounded here; the byte bound is enforced in add.
	lru, err := simplelru.NewLRU[chunkstore.ID, []byte](1<<31-1, func(_ chunkstore.ID, v []byte) {
		c.size -= int64(len(v))
	})
	if err != nil {
		panic(err) // only for a non-positive size
	}
	c.lru = lru
	return c
}

// SetPrefetchLimit sets how many prefetches may be in flight at once (at
// least 1): as many as the store usefully serves in parallel.
func (c *Cache) SetPrefetchLimit(n int) {
	c.mu.Lock()
	c.prefetchMax = max(n, 1)
	c.mu.Unlock()
}

// Get returns chunk id, calling fetch if it is not cached. Concurrent Gets
// of one missing chunk share one fetch, and so do a Get and a Prefetch. The
// returned slice is shared: the caller must not modify it.
//
// The fetch must not die with the first caller's ctx while others wait on
// it, so it gets a ctx without cancellation; each caller still stops
// waiting on its own ctx. A caller whose ctx cannot be cancelled (the FUSE
// read path) runs the fetch itself instead of in a new goroutine.
func (c *Cache) Get(ctx context.Context, id chunkstore.ID, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if b, ok := c.lru.Get(id); ok {
		c.hits++
		c.mu.Unlock()
		return b, nil
	}
	c.misses++
	cl, ok := c.inflight[id]
	if !ok {
		cl = c.startLocked(id, false)
	}
	c.mu.Unlock()
	if !ok {
		if ctx.Done() == nil {
			c.run(ctx, id, cl, fetch)
		} else {
			go c.run(ctx, id, cl, fetch)
		}
	}
	select {
	case <-cl.done:
		return cl.val, cl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Prefetch fetches id into the cache in the background if it is neither
// cached nor being fetched, and fewer prefetches than the limit are in
// flight. It reports whether it started a fetch. Errors are not kept: a
// later Get fetches again and sees them.
func (c *Cache) Prefetch(id chunkstore.ID, fetch func(context.Context) ([]byte, error)) bool {
	c.mu.Lock()
	if c.lru.Contains(id) || c.inflight[id] != nil || c.prefetching >= c.prefetchMax {
		c.mu.Unlock()
		return false
	}
	cl := c.startLocked(id, true)
	c.mu.Unlock()
	go c.run(context.Background(), id, cl, fetch)
	return true
}

// startLocked registers a fetch of id. c.mu must be held.
func (c *Cache) startLocked(id chunkstore.ID, prefetch bool) *call {
	cl := &call{done: make(chan struct{}), prefetch: prefetch}
	c.inflight[id] = cl
	if prefetch {
		c.prefetching++
	}
	return cl
}

// run performs cl's fetch, caches a success and wakes the waiters.
func (c *Cache) run(ctx context.Context, id chunkstore.ID, cl *call, fetch func(context.Context) ([]byte, error)) {
	b, err := fetch(context.WithoutCancel(ctx))
	cl.val, cl.err = b, err
	c.mu.Lock()
	delete(c.inflight, id)
	if cl.prefetch {
		c.prefetching--
	}
	if err == nil && !cl.removed {
		c.addLocked(id, b)
	}
	c.mu.Unlock()
	close(cl.done)
}

// Contains reports whether id is cached, without touching its recency.
func (c *Cache) Contains(id chunkstore.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Contains(id)
}

// addLocked caches b as id. c.mu must be held.
func (c *Cache) addLocked(id chunkstore.ID, b []byte) {
	if int64(len(b)) > c.max || c.lru.Contains(id) {
		return
	}
	c.lru.Add(id, b)
	c.size += int64(len(b))
	for c.size > c.max {
		c.lru.RemoveOldest()
	}
}

// Remove drops id from the cache. A fetch of id in flight still answers
// its waiters but does not put its result in the cache.
func (c *Cache) Remove(id chunkstore.ID) {
	c.mu.Lock()
	c.lru.Remove(id)
	if cl := c.inflight[id]; cl != nil {
		cl.removed = true
	}
	c.mu.Unlock()
}

// Size is the number of chunk bytes held.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Stats returns the hit and miss counts so far.
func (c *Cache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}
