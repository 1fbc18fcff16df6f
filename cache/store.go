package cache

import (
	"context"

	"github.com/casfs/casfs/chunkstore"
)

// Store is a chunkstore.Store decorator that serves Get from a Cache. It
// keeps the Store contract (Get returns a slice the caller owns, so it
// copies); code that can promise not to modify chunks uses Shared instead.
type Store struct {
	chunkstore.Store
	Cache *Cache
}

// Wrap puts a cache of maxBytes in front of inner, which must return
// verified plain chunks (an Encoded store).
func Wrap(inner chunkstore.Store, maxBytes int64) *Store {
	return &Store{Store: inner, Cache: New(maxBytes)}
}

// Shared returns chunk id from the cache, fetching it once if needed. The
// caller must not modify the returned slice.
func (s *Store) Shared(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	return s.Cache.Get(ctx, id, func(ctx context.Context) ([]byte, error) {
		return s.Store.Get(ctx, id)
	})
}

// Get returns a copy of chunk id.
func (s *Store) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	b, err := s.Shared(ctx, id)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// Prefetch starts fetching id into the cache.
func (s *Store) Prefetch(id chunkstore.ID) {
	s.Cache.Prefetch(id, func(ctx context.Context) ([]byte, error) { return s.Store.Get(ctx, id) })
}

// Delete drops id from the store and the cache: after a Delete, Get must
// say not found, as the Store contract has it.
func (s *Store) Delete(ctx context.Context, id chunkstore.ID) error {
	s.Cache.Remove(id)
	return s.Store.Delete(ctx, id)
}
