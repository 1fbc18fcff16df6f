package cache

import (
	"context"

	"github.com/casfs/casfs/chunkstore"
)

// Store is a chunkstore.Store decorator that serves Get from a Cache. It
// keeps the Store contract (Get returns a slice the caller owns, so it
// copies); code that can hold a chunk for as long as it uses it calls
// Acquire instead.
type Store struct {
	chunkstore.Store
	Cache *Cache
}

// Wrap puts a cache of maxBytes in front of inner, which must return
// verified plain chunks (an Encoded store). As many prefetches may be in
// flight as inner says it serves in parallel.
func Wrap(inner chunkstore.Store, maxBytes int64) *Store {
	c := New(maxBytes)
	if n := inner.Properties().Concurrency; n > 0 {
		c.SetPrefetchLimit(n)
	}
	return &Store{Store: inner, Cache: c}
}

// fetch reads id from the inner store, into the cache's buffers if it can.
func (s *Store) fetch(id chunkstore.ID) Fetch { return s.fetchSized(id, 0) }

// fetchSized is fetch for a chunk of size plain bytes, passed on to the
// store as a hint (chunkstore.WithSizeHint); 0 for unknown.
func (s *Store) fetchSized(id chunkstore.ID, size int64) Fetch {
	return func(ctx context.Context, bufs chunkstore.Buffers) ([]byte, []byte, error) {
		return chunkstore.GetBuffered(ctx, s.Store, id, chunkstore.WithSizeHint(bufs, int(size)))
	}
}

// Acquire returns a hold on chunk id from the cache, fetching it once if
// needed. The caller must Release it, and not modify its bytes.
func (s *Store) Acquire(ctx context.Context, id chunkstore.ID) (Ref, error) {
	return s.Cache.Acquire(ctx, id, s.fetch(id))
}

// AcquireIn is Acquire with a chunk it has to fetch cached where p says.
func (s *Store) AcquireIn(ctx context.Context, id chunkstore.ID, p Place) (Ref, error) {
	return s.Cache.AcquireIn(ctx, id, s.fetch(id), p)
}

// Get returns a copy of chunk id.
func (s *Store) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	return s.Cache.Get(ctx, id, s.fetch(id))
}

// PrefetchIn starts fetching id into the cache, where p says, unless it is
// cached, being fetched, or the prefetch limit is reached; it reports
// whether it did. size is the chunk's plain size if the caller knows it (a
// recipe's extent does), else 0: with it, a store like RADOS reads the
// chunk without a copy.
func (s *Store) PrefetchIn(id chunkstore.ID, size int64, p Place) bool {
	return s.Cache.PrefetchIn(id, s.fetchSized(id, size), p)
}

// Delete drops id from the store and the cache: after a Delete, Get must
// say not found, as the Store contract has it.
func (s *Store) Delete(ctx context.Context, id chunkstore.ID) error {
	s.Cache.Remove(id)
	return s.Store.Delete(ctx, id)
}

// Close closes the cache (waiting for its fetches: see Cache.Close), then
// the store behind it.
func (s *Store) Close() error {
	s.Cache.Close()
	return s.Store.Close()
}
