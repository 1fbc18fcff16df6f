package mem

import (
	"context"
	"sync"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// Shared is a Store that is also a chunkstore.Toucher, as a store written by
// several processes at once is: it keeps each chunk's change time, so tests
// can run the time-based garbage collection of shared stores (several Repos
// on one Shared stand in for several machines on one pool).
type Shared struct {
	*Store
	now func() time.Time

	mu    sync.Mutex
	mtime map[chunkstore.ID]time.Time // guarded by mu
}

var _ chunkstore.Toucher = (*Shared)(nil)

// NewShared returns an empty Shared store on clock now (time.Now if nil).
func NewShared(now func() time.Time) *Shared {
	if now == nil {
		now = time.Now
	}
	return &Shared{Store: New(), now: now, mtime: map[chunkstore.ID]time.Time{}}
}

// Put stores data under id; a new chunk's change time is now. Like a RADOS
// exclusive create, a Put of a chunk already there changes nothing.
func (s *Shared) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, _ := s.Store.Has(ctx, id); !ok {
		s.mtime[id] = s.now()
	}
	return s.Store.Put(ctx, id, data)
}

// Touch implements chunkstore.Toucher.
func (s *Shared) Touch(ctx context.Context, id chunkstore.ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, _ := s.Store.Has(ctx, id); !ok {
		return false, nil
	}
	s.mtime[id] = s.now()
	return true, nil
}

// DeleteIfIdle implements chunkstore.Toucher.
func (s *Shared) DeleteIfIdle(ctx context.Context, id chunkstore.ID, since time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, _ := s.Store.Has(ctx, id); !ok {
		return false, chunkstore.NotFound(id)
	}
	if !s.mtime[id].Before(since) {
		return false, nil
	}
	delete(s.mtime, id)
	return true, s.Store.Delete(ctx, id)
}

// Delete removes id.
func (s *Shared) Delete(ctx context.Context, id chunkstore.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mtime, id)
	return s.Store.Delete(ctx, id)
}
