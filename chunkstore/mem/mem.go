// Package mem is an in-memory chunkstore.Store for tests: a map behind a
// read-write mutex. It keeps the whole Store contract (checked by
// chunkstoretest) except durability, which it has no use for.
//
// Put and Get copy, so neither a caller that reuses its buffer after Put nor
// one that scribbles on what Get returned can change a stored chunk; tests
// of code above the store would otherwise pass against mem and fail against
// a real backend.
package mem

import (
	"bytes"
	"context"
	"runtime"
	"sync"

	"github.com/casfs/casfs/chunkstore"
)

// Store is an in-memory chunkstore.Store. The zero value is not usable; call
// New.
type Store struct {
	mu     sync.RWMutex
	chunks map[chunkstore.ID][]byte // guarded by mu
}

var _ chunkstore.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{chunks: map[chunkstore.ID][]byte{}}
}

// Put stores a copy of data under id. An id already present keeps its bytes.
func (s *Store) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Copy outside the lock: a large chunk should not stall readers.
	b := bytes.Clone(data)
	if b == nil {
		b = []byte{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chunks[id]; !ok {
		s.chunks[id] = b
	}
	return nil
}

// Get returns a copy of the bytes stored under id.
func (s *Store) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	b, ok := s.chunks[id]
	s.mu.RUnlock()
	if !ok {
		return nil, chunkstore.NotFound(id)
	}
	// Stored slices are never modified, so copying after unlocking is safe.
	return append([]byte{}, b...), nil
}

// Has reports whether id is stored.
func (s *Store) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.chunks[id]
	return ok, nil
}

// Delete removes id.
func (s *Store) Delete(ctx context.Context, id chunkstore.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.chunks[id]; !ok {
		return chunkstore.NotFound(id)
	}
	delete(s.chunks, id)
	return nil
}

// List calls fn for each chunk. It works on a snapshot, so fn may call back
// into the store (a garbage collector deleting as it lists) without
// deadlocking.
func (s *Store) List(ctx context.Context, fn func(chunkstore.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	infos := make([]chunkstore.Info, 0, len(s.chunks))
	for id, b := range s.chunks {
		infos = append(infos, chunkstore.Info{ID: id, Size: int64(len(b))})
	}
	s.mu.RUnlock()
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Sync does nothing but check ctx: the store keeps nothing across a crash,
// so there is nothing to make durable.
func (s *Store) Sync(ctx context.Context) error { return ctx.Err() }

// Properties describes the store.
func (s *Store) Properties() chunkstore.Properties {
	return chunkstore.Properties{
		Name:        "mem",
		Concurrency: runtime.GOMAXPROCS(0),
		Local:       true,
	}
}

// Close does nothing; the chunks stay readable so a test can inspect them.
func (s *Store) Close() error { return nil }

// Len returns the number of stored chunks, for tests.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.chunks)
}
