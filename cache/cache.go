package cache

import (
	"context"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

	"github.com/casfs/casfs/chunkstore"
)

// Cache is a bytes-bounded LRU of chunks with one fetch per chunk at a time.
type Cache struct {
	max int64

	mu   sync.Mutex
	lru  *simplelru.LRU[chunkstore.ID, []byte]
	size int64

	group singleflight.Group
	// Hits and Misses count lookups, for tests and stats.
	hits, misses int64
}

// New returns a cache holding at most maxBytes of chunk data.
func New(maxBytes int64) *Cache {
	c := &Cache{max: maxBytes}
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

// Get returns chunk id, calling fetch if it is not cached. Concurrent Gets
// of one missing chunk share one fetch. The returned slice is shared: the
// caller must not modify it.
func (c *Cache) Get(ctx context.Context, id chunkstore.ID, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	if b, ok := c.lookup(id); ok {
		return b, nil
	}
	key := string(id[:])
	ch := c.group.DoChan(key, func() (any, error) {
		// Check again: another fetch may have finished since lookup.
		if b, ok := c.peek(id); ok {
			return b, nil
		}
		// The fetch must not die with the first caller's ctx while others
		// wait on it; each caller still stops waiting on its own ctx.
		b, err := fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		c.add(id, b)
		return b, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Prefetch fetches id into the cache in the background if it is neither
// cached nor being fetched.
func (c *Cache) Prefetch(id chunkstore.ID, fetch func(context.Context) ([]byte, error)) {
	if c.Contains(id) {
		return
	}
	go c.Get(context.Background(), id, fetch)
}

// Contains reports whether id is cached, without touching its recency.
func (c *Cache) Contains(id chunkstore.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Contains(id)
}

func (c *Cache) lookup(id chunkstore.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.lru.Get(id)
	if ok {
		c.hits++
	} else {
		c.misses++
	}
	return b, ok
}

func (c *Cache) peek(id chunkstore.ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Peek(id)
}

func (c *Cache) add(id chunkstore.ID, b []byte) {
	if int64(len(b)) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Contains(id) {
		return
	}
	c.lru.Add(id, b)
	c.size += int64(len(b))
	for c.size > c.max {
		c.lru.RemoveOldest()
	}
}

// Remove drops id from the cache.
func (c *Cache) Remove(id chunkstore.ID) {
	c.mu.Lock()
	c.lru.Remove(id)
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
