package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/casfs/casfs/chunkstore"
)

// DefaultPrefetch is how many prefetches may be in flight at once unless
// the cache is told otherwise (SetPrefetchLimit).
const DefaultPrefetch = 16

// Fetch reads a chunk for the cache, preferably into memory from bufs
// (chunkstore.GetBuffered): it returns the chunk's bytes and the buffer
// from bufs holding them, or a nil buffer if they are not lent memory.
type Fetch func(ctx context.Context, bufs chunkstore.Buffers) (data, buf []byte, err error)

// Plain adapts a fetch that allocates its own memory.
func Plain(fetch func(context.Context) ([]byte, error)) Fetch {
	return func(ctx context.Context, _ chunkstore.Buffers) ([]byte, []byte, error) {
		b, err := fetch(ctx)
		return b, nil, err
	}
}

// Cache is a bytes-bounded LRU of chunks with one fetch per chunk at a time.
//
// Chunks fetched for PlaceStream, for a sequential reader of a file larger
// than the cache, are kept apart, in a second LRU of at most a sixteenth of
// the cache (64 MiB at least, half at most). An LRU serves a scan larger
// than itself no hits the next time round, so such a file must not push out
// what other readers use; and its chunks' buffers are reused within that
// window instead of the cache growing to its bound with fresh memory (on the
// machines casfs is benchmarked on, first-touch page faults made a cold
// 2 GiB read through a 1 GiB cache cost 3× the CPU of one through 64 MiB).
// PlaceScan, for a sequential reader of a file the cache could hold, puts
// its chunks in room the main LRU has free (short of the window's), and
// once there is none, in that window too; the window's recently evicted
// chunks are remembered (ghosts, IDs only), and a second pass caches them in
// the main LRU, as 2Q does.
//
// Chunk memory is reused: the buffer of an evicted chunk goes back to the
// cache's pool for the next fetch, once nobody holds the chunk. So every
// use of a chunk's bytes is bracketed by Acquire and Ref.Release.
type Cache struct {
	max  int64
	bufs *bufPool

	mu   sync.Mutex
	lru  *simplelru.LRU[chunkstore.ID, *entry]
	size int64 // cost of the entries in lru
	// stream holds the chunks fetched for the window, at most streamMax;
	// together with lru at most max.
	stream                *simplelru.LRU[chunkstore.ID, *entry]
	streamSize, streamMax int64
	// ghosts remembers, without their bytes, the chunks the stream window
	// let go of lately, so that a PlaceScan fetch of one of them (a second
	// pass over a file) caches it in the main LRU.
	ghosts *simplelru.LRU[chunkstore.ID, struct{}]
	// inflight holds the fetch under way for each chunk being fetched:
	// an Acquire of such a chunk waits for it, a Prefetch of it does
	// nothing.
	inflight map[chunkstore.ID]*call
	// prefetching counts the inflight calls Prefetch started; at
	// prefetchMax, Prefetch starts no more.
	prefetching, prefetchMax int
	// hits and misses count lookups, and fetches the fetches started,
	// for tests and stats.
	hits, misses, fetches int64
	// runs counts the fetches under way, which Close waits for; closed
	// (by Close) refuses new ones. Both change under mu.
	runs   sync.WaitGroup
	closed bool
}

// entry is one chunk in memory. Its bytes never change while refs > 0;
// at 0 its buffer goes back to the pool.
type entry struct {
	data []byte
	buf  []byte // lent by pool; nil if data is not lent memory
	pool *bufPool
	// refs counts the holders: the LRU while the entry is in it, and
	// every Ref not yet released. It is raised only under Cache.mu, by
	// someone who found the entry in the LRU or is handing it out
	// fresh from a fetch, so it cannot climb back from 0.
	refs atomic.Int32
}

// cost is what the entry counts against the cache's bound: its length.
// A lent buffer may be up to 1/8 larger (its size class); counting that
// instead would keep a file of exactly the cache's size from fitting in it,
// which random readers of such a file (bench-fuse's fio test) pay for with
// a miss, and a chunk's load and verification, every few reads.
func (e *entry) cost() int64 { return int64(len(e.data)) }

func (e *entry) release() {
	switch n := e.refs.Add(-1); {
	case n == 0:
		if e.buf != nil {
			e.pool.Put(e.buf)
		}
		// A holder that reads on after its Release finds nothing
		// rather than another chunk's bytes.
		e.data, e.buf = nil, nil
	case n < 0:
		panic("cache: chunk released more often than acquired")
	}
}

// Ref is a hold on a chunk: its bytes stay as they are until Release,
// after which the holder must not touch them. The zero Ref holds nothing.
type Ref struct{ e *entry }

// Bytes returns the chunk. The caller must not modify it.
func (r Ref) Bytes() []byte {
	if r.e == nil {
		return nil
	}
	return r.e.data
}

// Release lets go of the chunk. Call it once per Ref that Acquire returned.
func (r Ref) Release() {
	if r.e != nil {
		r.e.release()
	}
}

// call is one fetch of one chunk. e and err are set, and done closed,
// under Cache.mu.
type call struct {
	done     chan struct{}
	e        *entry // on success, with a ref for each waiter
	err      error
	waiters  int  // Acquires waiting for the result
	prefetch bool // started by Prefetch: counts in prefetching
	stream   bool // cached in the stream LRU (PlaceStream, or PlaceScan of a new chunk)
	scan     bool // stream for PlaceScan: the main LRU after all if it has room
	removed  bool // Remove came while in flight: do not cache the result
}

// New returns a cache holding at most maxBytes of chunk data. The memory
// behind it is that, plus the size classes' slack (at most 1/8 of a pooled
// chunk, ~6% on average for chunks of varying size), plus buffers kept for
// reuse. Buffers are cut from huge-page slabs, up to maxBytes and its
// slack, and kept for reuse as long as the cache lives; buffers beyond
// that (chunks of sizes the slabs' free buffers do not fit, whose memory
// is then given back) are plain allocations, of which 1/16 of maxBytes, at
// least 16 MiB (a prefetch window's worth) or maxBytes if that is less,
// are kept for reuse.
func New(maxBytes int64) *Cache {
	c := &Cache{
		max:         maxBytes,
		bufs:        newBufPool(min(maxBytes, max(maxBytes/16, 16<<20)), maxBytes+maxBytes/8),
		inflight:    map[chunkstore.ID]*call{},
		prefetchMax: DefaultPrefetch,
	}
	c.streamMax = min(maxBytes/2, max(maxBytes/16, 64<<20))
	// The entry counts are unbounded here; the byte bounds are enforced
	// in run.
	c.lru = newLRU(func(_ chunkstore.ID, e *entry) { c.size -= e.cost() })
	c.stream = newLRU(func(id chunkstore.ID, e *entry) {
		c.streamSize -= e.cost()
		c.ghosts.Add(id, struct{}{})
	})
	// A ghost costs ~150 bytes; one per 128 KiB of cache remembers more
	// chunks than the cache holds at the chunkers' usual sizes.
	ghosts, err := simplelru.NewLRU[chunkstore.ID, struct{}](int(max(1024, maxBytes>>17)), nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	c.ghosts = ghosts
	return c
}

func newLRU(evicted func(chunkstore.ID, *entry)) *simplelru.LRU[chunkstore.ID, *entry] {
	lru, err := simplelru.NewLRU[chunkstore.ID, *entry](1<<31-1, func(id chunkstore.ID, e *entry) {
		evicted(id, e)
		e.release()
	})
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return lru
}

// lookupLocked returns id's entry from either LRU. c.mu must be held.
func (c *Cache) lookupLocked(id chunkstore.ID) (*entry, bool) {
	if e, ok := c.lru.Get(id); ok {
		return e, true
	}
	return c.stream.Get(id)
}

// containsLocked reports whether id is in either LRU. c.mu must be held.
func (c *Cache) containsLocked(id chunkstore.ID) bool {
	return c.lru.Contains(id) || c.stream.Contains(id)
}

// SetPrefetchLimit sets how many prefetches may be in flight at once (at
// least 1): as many as the store usefully serves in parallel.
func (c *Cache) SetPrefetchLimit(n int) {
	c.mu.Lock()
	c.prefetchMax = max(n, 1)
	c.mu.Unlock()
}

// Acquire returns a hold on chunk id, calling fetch if it is not cached.
// Concurrent Acquires of one missing chunk share one fetch, and so do an
// Acquire and a Prefetch. The caller must Release the Ref.
//
// The fetch must not die with the first caller's ctx while others wait on
// it, so it gets a ctx without cancellation; each caller still stops
// waiting on its own ctx. A caller whose ctx cannot be cancelled (the FUSE
// read path) runs the fetch itself instead of in a new goroutine. A ctx
// already done gets its error, even for a cached chunk: the Store contract
// says a done ctx stops every method, and a select between a finished
// fetch and a done ctx would otherwise pick either at random.
func (c *Cache) Acquire(ctx context.Context, id chunkstore.ID, fetch Fetch) (Ref, error) {
	return c.acquire(ctx, id, fetch, PlaceMain)
}

// AcquireIn is Acquire with a chunk it has to fetch cached where p says.
func (c *Cache) AcquireIn(ctx context.Context, id chunkstore.ID, fetch Fetch, p Place) (Ref, error) {
	return c.acquire(ctx, id, fetch, p)
}

// Place says where the cache keeps a chunk it fetches for a reader.
type Place int

const (
	// PlaceMain is the main LRU: random readers, and files no larger
	// than the stream window.
	PlaceMain Place = iota
	// PlaceStream is the stream window (see Cache), for a sequential
	// reader of more than the cache holds.
	PlaceStream
	// PlaceScan is for a sequential reader of a file that the cache
	// could hold, but that may well be read only once (a copy, a
	// checksum, a backup). Its chunks take room the main LRU has free,
	// short of the window's: they push nothing out, and a file read once
	// after the mount is then cached for the random reads that often
	// follow (a database, an archive's index). Once there is no room,
	// they go to the stream window, unless the window let go of the
	// chunk lately, which means the file is being read again: then the
	// main LRU.
	//
	// In the window, the first pass reuses the window's memory and
	// leaves what other readers cached alone; the kernel's page cache
	// keeps what the reader read. A second pass costs one more fetch per
	// chunk and caches the file for the passes after it. Filling free
	// room costs fresh memory, which on the VMs casfs is benchmarked on
	// (free pages go back to the host) more than doubled the CPU of a
	// first cold read of 1 GiB; but it is paid once per mount, not per
	// read, and random reads of the file after it ran nearly twice as
	// fast (see docs/BENCHMARKS.md).
	PlaceScan
)

// inWindowLocked reports whether a chunk fetched for p goes into the stream
// window, and forgets id's ghost if it is promoted. c.mu must be held.
func (c *Cache) inWindowLocked(id chunkstore.ID, p Place) bool {
	switch p {
	case PlaceStream:
		return true
	case PlaceScan:
		return !c.ghosts.Remove(id)
	}
	return false
}

func (c *Cache) acquire(ctx context.Context, id chunkstore.ID, fetch Fetch, p Place) (Ref, error) {
	if err := ctx.Err(); err != nil {
		return Ref{}, err
	}
	c.mu.Lock()
	if e, ok := c.lookupLocked(id); ok {
		e.refs.Add(1)
		c.hits++
		c.mu.Unlock()
		return Ref{e}, nil
	}
	c.misses++
	cl, ok := c.inflight[id]
	if !ok {
		if c.closed {
			c.mu.Unlock()
			return Ref{}, ErrClosed
		}
		cl = c.startLocked(id, p, false)
	}
	cl.waiters++
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
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-cl.done: // finished meanwhile: its ref for us is ours to drop
			c.mu.Unlock()
			if cl.e != nil {
				cl.e.release()
			}
		default:
			cl.waiters--
			c.mu.Unlock()
		}
		return Ref{}, ctx.Err()
	}
	if cl.err != nil {
		return Ref{}, cl.err
	}
	return Ref{cl.e}, nil
}

// Get returns a copy of chunk id (see Acquire), which the caller owns.
func (c *Cache) Get(ctx context.Context, id chunkstore.ID, fetch Fetch) ([]byte, error) {
	r, err := c.Acquire(ctx, id, fetch)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return append([]byte(nil), r.Bytes()...), nil
}

// Max is the most chunk data the cache holds.
func (c *Cache) Max() int64 { return c.max }

// StreamMax is the most chunk data the stream window holds.
func (c *Cache) StreamMax() int64 { return c.streamMax }

// Prefetch fetches id into the cache in the background if it is neither
// cached nor being fetched, and fewer prefetches than the limit are in
// flight. It reports whether it started a fetch. Errors are not kept: a
// later Acquire fetches again and sees them.
func (c *Cache) Prefetch(id chunkstore.ID, fetch Fetch) bool {
	return c.PrefetchIn(id, fetch, PlaceMain)
}

// PrefetchIn is Prefetch with the chunk cached where p says.
func (c *Cache) PrefetchIn(id chunkstore.ID, fetch Fetch, p Place) bool {
	c.mu.Lock()
	if c.closed || c.containsLocked(id) || c.inflight[id] != nil || c.prefetching >= c.prefetchMax {
		c.mu.Unlock()
		return false
	}
	cl := c.startLocked(id, p, true)
	c.mu.Unlock()
	go c.run(context.Background(), id, cl, fetch)
	return true
}

// startLocked registers a fetch of id, to be cached where p says. c.mu
// must be held.
func (c *Cache) startLocked(id chunkstore.ID, p Place, prefetch bool) *call {
	cl := &call{done: make(chan struct{}), prefetch: prefetch}
	cl.stream = c.inWindowLocked(id, p)
	cl.scan = cl.stream && p == PlaceScan
	c.inflight[id] = cl
	c.fetches++
	c.runs.Add(1)
	if prefetch {
		c.prefetching++
	}
	return cl
}

// run performs cl's fetch, caches a success and hands it to the waiters.
func (c *Cache) run(ctx context.Context, id chunkstore.ID, cl *call, fetch Fetch) {
	data, buf, err := fetch(context.WithoutCancel(ctx), c.bufs)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inflight, id)
	if cl.prefetch {
		c.prefetching--
	}
	cl.err = err
	if err == nil {
		e := &entry{data: data, buf: buf, pool: c.bufs}
		keep := !cl.removed && e.cost() <= c.max && !c.containsLocked(id)
		refs := int32(cl.waiters)
		if keep {
			refs++
		}
		e.refs.Store(refs + 1) // +1 for run itself until the end
		if keep {
			// A scan's chunk takes room nobody uses in the main LRU,
			// short of the window's: it pushes nothing out, the window
			// keeps its room for the rest of the scan (a prefetched
			// chunk evicted before its read would come back as a
			// ghost, into the main LRU), and the file stays cached.
			roomy := c.size+e.cost() <= c.max-c.streamMax
			c.addLocked(id, e, cl.stream && !(cl.scan && roomy))
		}
		cl.e = e
		e.release() // run's own
	}
	close(cl.done)
	c.runs.Done()
}

// ErrClosed is Acquire's error, after Close, for a chunk it would have to
// fetch.
var ErrClosed = errors.New("chunk cache closed")

// Close waits for the fetches under way, Prefetch's included, and makes
// the cache start no more: from then on Prefetch does nothing and Acquire
// serves only what is cached (ErrClosed for the rest). A background fetch
// outlives the read that wanted it, so the owner of the store behind the
// cache calls Close before closing the store.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.runs.Wait()
}

// addLocked caches e as id, in the stream LRU if streamed, and
// evicts to stay within the bounds: the stream's own first; then, while the
// two together are over the cache's, stream entries before main ones.
// c.mu must be held.
func (c *Cache) addLocked(id chunkstore.ID, e *entry, streamed bool) {
	if streamed {
		c.stream.Add(id, e)
		c.streamSize += e.cost()
	} else {
		c.lru.Add(id, e)
		c.size += e.cost()
	}
	for c.streamSize > c.streamMax {
		c.stream.RemoveOldest()
	}
	for c.size+c.streamSize > c.max {
		if c.stream.Len() > 0 {
			c.stream.RemoveOldest()
		} else {
			c.lru.RemoveOldest()
		}
	}
}

// Contains reports whether id is cached, without touching its recency.
func (c *Cache) Contains(id chunkstore.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.containsLocked(id)
}

// Remove drops id from the cache. A fetch of id in flight still answers
// its waiters but does not put its result in the cache.
func (c *Cache) Remove(id chunkstore.ID) {
	c.mu.Lock()
	c.lru.Remove(id)
	c.stream.Remove(id)
	c.ghosts.Remove(id)
	if cl := c.inflight[id]; cl != nil {
		cl.removed = true
	}
	c.mu.Unlock()
}

// Size is the number of bytes of chunk data held.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size + c.streamSize
}

// Fetches returns how many fetches the cache has started: a chunk evicted
// and read again counts twice, a miss that joined a fetch under way not.
func (c *Cache) Fetches() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetches
}

// Stats returns the hit and miss counts so far.
func (c *Cache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}
