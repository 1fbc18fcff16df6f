package cache_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casfs/casfs/cache"
	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
	"github.com/casfs/casfs/chunkstore/mem"
)

// The cache decorator keeps the Store contract, like every decorator.
func TestConformance(t *testing.T) {
	chunkstoretest.Run(t, func(t *testing.T) chunkstore.Store {
		enc, err := chunkstore.NewEncoded(mem.New(), chunkstore.HashBLAKE3, chunkstore.CompressionZstd)
		if err != nil {
			t.Fatal(err)
		}
		return cache.Wrap(enc, 8<<20)
	})
}

func chunk(n int, b byte) ([]byte, chunkstore.ID) {
	d := bytes.Repeat([]byte{b}, n)
	return d, chunkstore.HashBLAKE3.Sum(d)
}

func TestBoundedInBytes(t *testing.T) {
	c := cache.New(10 << 10)
	for i := 0; i < 10; i++ {
		d, id := chunk(3<<10, byte(i))
		got, err := c.Get(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) { return d, nil }))
		if err != nil || !bytes.Equal(got, d) {
			t.Fatalf("Get %d: %v", i, err)
		}
		if c.Size() > 10<<10 {
			t.Fatalf("cache holds %d bytes, bound is %d", c.Size(), 10<<10)
		}
	}
	// The newest three fit; the oldest were evicted.
	_, newest := chunk(3<<10, 9)
	_, oldest := chunk(3<<10, 0)
	if !c.Contains(newest) || c.Contains(oldest) {
		t.Fatalf("LRU order: newest cached %v, oldest cached %v", c.Contains(newest), c.Contains(oldest))
	}
	// A chunk bigger than the whole cache is served but not kept.
	big, bigID := chunk(20<<10, 'x')
	if got, _ := c.Get(context.Background(), bigID, cache.Plain(func(context.Context) ([]byte, error) { return big, nil })); !bytes.Equal(got, big) || c.Contains(bigID) {
		t.Fatal("oversized chunk")
	}
}

func TestFetchOnceForConcurrentReaders(t *testing.T) {
	c := cache.New(1 << 20)
	d, id := chunk(1000, 'a')
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) ([]byte, error) {
		fetches.Add(1)
		<-release
		return d, nil
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			if got, err := c.Get(context.Background(), id, cache.Plain(fetch)); err != nil || !bytes.Equal(got, d) {
				t.Errorf("Get: %v", err)
			}
		}()
	}
	for i := 0; i < 16; i++ {
		<-started
	}
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for one chunk, want 1", n)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := cache.New(1 << 20)
	d, id := chunk(100, 'e')
	boom := errors.New("boom")
	if _, err := c.Get(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) { return nil, boom })); !errors.Is(err, boom) {
		t.Fatalf("first Get: %v", err)
	}
	got, err := c.Get(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) { return d, nil }))
	if err != nil || !bytes.Equal(got, d) {
		t.Fatalf("Get after a failed fetch: %v", err)
	}
}

func TestWaiterHonoursItsContext(t *testing.T) {
	c := cache.New(1 << 20)
	_, id := chunk(10, 'w')
	block := make(chan struct{})
	defer close(block)
	go c.Get(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) { <-block; return nil, errors.New("late") }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, id, cache.Plain(func(context.Context) ([]byte, error) { <-block; return nil, nil })); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
}

// A caller that gives up does not take the fetch down with it: the next
// caller gets the fetched chunk, fetched once.
func TestCancelledCallerLeavesFetchRunning(t *testing.T) {
	c := cache.New(1 << 20)
	d, id := chunk(100, 'c')
	var fetches atomic.Int32
	block := make(chan struct{})
	fetch := func(context.Context) ([]byte, error) { fetches.Add(1); <-block; return d, nil }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := c.Get(ctx, id, cache.Plain(fetch)); errc <- err }()
	for fetches.Load() == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	close(block)
	if got, err := c.Get(context.Background(), id, cache.Plain(fetch)); err != nil || !bytes.Equal(got, d) {
		t.Fatalf("Get after the cancelled one: %v", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// Prefetch starts nothing for a chunk that is cached or already being
// fetched, and no more than the limit at once; a Get joins a prefetch.
func TestPrefetchDoesNotDuplicate(t *testing.T) {
	c := cache.New(1 << 20)
	c.SetPrefetchLimit(2)
	var fetches atomic.Int32
	release := make(chan struct{})
	slow := func(d []byte) cache.Fetch {
		return cache.Plain(func(context.Context) ([]byte, error) { fetches.Add(1); <-release; return d, nil })
	}
	a, ida := chunk(10, 'a')
	b, idb := chunk(10, 'b')
	_, idc := chunk(10, 'c')
	if !c.Prefetch(ida, slow(a)) || !c.Prefetch(idb, slow(b)) {
		t.Fatal("first prefetches did not start")
	}
	if c.Prefetch(ida, slow(a)) {
		t.Fatal("second prefetch of a chunk being fetched started")
	}
	if c.Prefetch(idc, slow(nil)) {
		t.Fatal("prefetch above the limit started")
	}
	got := make(chan []byte)
	go func() {
		v, _ := c.Get(context.Background(), ida, cache.Plain(func(context.Context) ([]byte, error) {
			t.Error("Get fetched a chunk being prefetched")
			return nil, nil
		}))
		got <- v
	}()
	close(release)
	if v := <-got; !bytes.Equal(v, a) {
		t.Fatalf("Get joined the prefetch and got %q", v)
	}
	for !c.Contains(idb) {
		runtime.Gosched()
	}
	if c.Prefetch(idb, slow(b)) {
		t.Fatal("prefetch of a cached chunk started")
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// Remove while a fetch is in flight: the waiters get the chunk, the cache
// does not keep it (a chunk deleted from the store must not come back from
// a fetch that read it just before).
func TestRemoveDuringFetch(t *testing.T) {
	c := cache.New(1 << 20)
	d, id := chunk(100, 'r')
	started, release := make(chan struct{}), make(chan struct{})
	got := make(chan []byte)
	go func() {
		v, _ := c.Get(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) {
			close(started)
			<-release
			return d, nil
		}))
		got <- v
	}()
	<-started
	c.Remove(id)
	close(release)
	if v := <-got; !bytes.Equal(v, d) {
		t.Fatal("waiter did not get the chunk")
	}
	if c.Contains(id) {
		t.Fatal("a chunk removed during its fetch was cached")
	}
}

// lentFetch returns a Fetch that reads chunk d into the cache's buffers.
func lentFetch(d []byte) cache.Fetch {
	return func(_ context.Context, bufs chunkstore.Buffers) ([]byte, []byte, error) {
		b := bufs.Get(len(d))
		copy(b, d)
		return b, b, nil
	}
}

// The buffer of an evicted chunk nobody holds is what the next fetch gets;
// one still held is not reused until its last Release, and its bytes stay.
func TestBuffersReusedOnlyWhenReleased(t *testing.T) {
	ctx := context.Background()
	c := cache.New(2 << 20) // room for two 700 KiB chunks
	get := func(d []byte, id chunkstore.ID) cache.Ref {
		t.Helper()
		r, err := c.Acquire(ctx, id, lentFetch(d))
		if err != nil || !bytes.Equal(r.Bytes(), d) {
			t.Fatalf("Acquire: %v", err)
		}
		return r
	}
	d := make([][]byte, 6)
	ids := make([]chunkstore.ID, 6)
	for i := range d {
		d[i], ids[i] = chunk(700<<10, byte('a'+i))
	}
	held := get(d[0], ids[0])
	heldAt := &held.Bytes()[0]
	get(d[1], ids[1]).Release()
	get(d[2], ids[2]).Release() // evicts 0, which is held
	r := get(d[3], ids[3])      // evicts 1, free: its buffer comes back
	if c.Contains(ids[0]) || c.Contains(ids[1]) {
		t.Fatal("LRU order")
	}
	if &r.Bytes()[0] == heldAt {
		t.Fatal("the buffer of a held chunk was reused")
	}
	r.Release()
	if !bytes.Equal(held.Bytes(), d[0]) {
		t.Fatal("a held chunk's bytes changed after eviction")
	}
	held.Release() // evicted already: its buffer goes back now
	reused := false
	for _, k := range []int{4, 5, 0} {
		r := get(d[k], ids[k])
		reused = reused || &r.Bytes()[0] == heldAt
		r.Release()
	}
	if !reused {
		t.Fatal("the buffer of a released, evicted chunk was not reused")
	}
	if c.Size() > 2<<20 {
		t.Fatalf("cache holds %d bytes, bound %d", c.Size(), 2<<20)
	}
}

func TestDoubleReleasePanics(t *testing.T) {
	c := cache.New(1 << 20)
	d, id := chunk(100, 'x')
	r, err := c.Acquire(context.Background(), id, lentFetch(d))
	if err != nil {
		t.Fatal(err)
	}
	r.Release()
	c.Remove(id) // the cache lets go too: the count is 0
	defer func() {
		if recover() == nil {
			t.Fatal("a second Release did not panic")
		}
	}()
	r.Release()
}

// Many readers, a cache far smaller than what they read, buffers reused all
// the time: every byte any reader sees is the chunk's own.
func TestReuseUnderConcurrency(t *testing.T) {
	c := cache.New(512 << 10)
	c.SetPrefetchLimit(4)
	const nchunks = 24
	d := make([][]byte, nchunks)
	ids := make([]chunkstore.ID, nchunks)
	for i := range d {
		d[i], ids[i] = chunk(64<<10+i*4<<10, byte(i)) // pooled sizes, several classes
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ctx := context.Background()
			if g%2 == 1 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
			}
			for i := 0; i < 200; i++ {
				k := (g*7 + i*5) % nchunks
				c.Prefetch(ids[(k+1)%nchunks], lentFetch(d[(k+1)%nchunks]))
				r, err := c.Acquire(ctx, ids[k], lentFetch(d[k]))
				if err != nil {
					t.Error(err)
					return
				}
				b := r.Bytes()
				runtime.Gosched() // let others evict and refill meanwhile
				if !bytes.Equal(b, d[k]) {
					t.Errorf("chunk %d: wrong bytes while held", k)
				}
				r.Release()
			}
		}(g)
	}
	wg.Wait()
}

// The bound counts chunk bytes, not their buffers' size classes: chunks
// adding up to exactly the cache's size all stay.
func TestBoundCountsChunkBytes(t *testing.T) {
	const n, size = 4, 700 << 10 // 700 KiB chunks sit in 704 KiB buffers
	c := cache.New(n * size)
	ids := make([]chunkstore.ID, n)
	for i := range ids {
		var d []byte
		d, ids[i] = chunk(size, byte(i))
		r, err := c.Acquire(context.Background(), ids[i], lentFetch(d))
		if err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	for i, id := range ids {
		if !c.Contains(id) {
			t.Fatalf("chunk %d of %d evicted from a cache of their total size", i, n)
		}
	}
	if got := c.Size(); got != n*size {
		t.Fatalf("Size = %d, want %d", got, n*size)
	}
}

// TestDoneContextRefused: a done ctx gets its error whether the chunk is
// cached or not, and the fetch is not called for it.
func TestDoneContextRefused(t *testing.T) {
	c := cache.New(1 << 20)
	data, id := chunk(1000, 3)
	fetches := 0
	fetch := cache.Plain(func(context.Context) ([]byte, error) { fetches++; return data, nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 { // a miss; a race between fetch and ctx would show within 50
		if _, err := c.Get(ctx, id, fetch); !errors.Is(err, context.Canceled) {
			t.Fatalf("miss %d with a cancelled ctx: %v; want context.Canceled", i, err)
		}
	}
	if fetches != 0 {
		t.Errorf("fetch ran %d times for cancelled callers", fetches)
	}
	if _, err := c.Get(context.Background(), id, fetch); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, id, fetch); !errors.Is(err, context.Canceled) {
		t.Errorf("hit with a cancelled ctx: %v; want context.Canceled", err)
	}
}

// TestStreamDoesNotFlushCache: chunks prefetched for PlaceStream (a
// sequential reader of a file larger than the cache) are kept in a window
// of their own (half of this small cache; a sixteenth, at least 64 MiB, of
// a large one), so streaming a file much larger than the cache leaves the
// chunks that were fetched on demand cached, and the cache no larger than
// the demand chunks plus the window.
func TestStreamDoesNotFlushCache(t *testing.T) {
	const max, size = 1 << 20, 64 << 10
	c := cache.New(max)
	c.SetPrefetchLimit(1 << 10)
	var demand []chunkstore.ID
	for i := range 6 { // 384 KiB, on demand
		d, id := chunk(size, byte(i))
		if _, err := c.Get(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) { return d, nil })); err != nil {
			t.Fatal(err)
		}
		demand = append(demand, id)
	}
	var streamed []chunkstore.ID
	for i := range 40 { // 2.5 MiB, prefetched: more than the whole cache
		d, id := chunk(size, byte(100+i))
		if !c.PrefetchIn(id, cache.Plain(func(context.Context) ([]byte, error) { return d, nil }), cache.PlaceStream) {
			t.Fatalf("stream %d did not start", i)
		}
		for !c.Contains(id) {
			runtime.Gosched()
		}
		// The reader reads it: a hit, which must not move it out of
		// the window.
		if _, err := c.Get(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) {
			t.Error("Get fetched a prefetched chunk")
			return nil, nil
		})); err != nil {
			t.Fatal(err)
		}
		streamed = append(streamed, id)
	}
	for i, id := range demand {
		if !c.Contains(id) {
			t.Errorf("demand chunk %d was evicted by a stream of prefetched chunks", i)
		}
	}
	if got, want := c.Size(), int64(6*size+max/2); got > want {
		t.Errorf("cache holds %d bytes; want at most %d (demand chunks and the stream window)", got, want)
	}
	if !c.Contains(streamed[len(streamed)-1]) {
		t.Error("the newest prefetched chunk is not cached")
	}
	if c.Contains(streamed[0]) {
		t.Error("the oldest prefetched chunk is still cached beyond the stream window")
	}
}

// Close waits for the fetches under way, a Prefetch's and the one a
// cancelled caller left running included: they would otherwise reach the
// store behind the cache after its owner closed it. After Close the cache
// serves what it holds and fetches nothing.
func TestCloseWaitsForFetches(t *testing.T) {
	c := cache.New(1 << 20)
	a, ida := chunk(10, 'a')
	b, idb := chunk(10, 'b')
	d, idd := chunk(10, 'd')
	if _, err := c.Get(context.Background(), idd, cache.Plain(func(context.Context) ([]byte, error) { return d, nil })); err != nil {
		t.Fatal(err)
	}
	var started, finished atomic.Int32
	release := make(chan struct{})
	slow := func(d []byte) cache.Fetch {
		return cache.Plain(func(context.Context) ([]byte, error) {
			started.Add(1)
			<-release
			finished.Add(1)
			return d, nil
		})
	}
	if !c.Prefetch(ida, slow(a)) {
		t.Fatal("prefetch did not start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := c.Get(ctx, idb, slow(b)); errc <- err }()
	for started.Load() < 2 {
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned with fetches under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if n := finished.Load(); n != 2 {
		t.Fatalf("Close returned after %d of 2 fetches finished", n)
	}
	never := cache.Plain(func(context.Context) ([]byte, error) {
		t.Error("fetch after Close")
		return nil, nil
	})
	_, ide := chunk(10, 'e')
	if c.Prefetch(ide, never) {
		t.Error("Prefetch after Close started a fetch")
	}
	if _, err := c.Get(context.Background(), ide, never); !errors.Is(err, cache.ErrClosed) {
		t.Errorf("Get of an uncached chunk after Close: %v; want ErrClosed", err)
	}
	if got, err := c.Get(context.Background(), idd, never); err != nil || !bytes.Equal(got, d) {
		t.Errorf("Get of a cached chunk after Close: %q, %v", got, err)
	}
}

// scanPasses makes a cache of 4 MiB (window 2 MiB), fetches others chunks
// of 64 KiB as a random reader would, then reads a file of n such chunks
// with PlaceScan, passes times. It returns the fetches of each pass and
// how many of the other reader's chunks are still cached after each.
func scanPasses(t *testing.T, others, n, passes int) (fetched, kept []int) {
	t.Helper()
	const max, size = 4 << 20, 64 << 10
	c := cache.New(max)
	if w := c.StreamMax(); w != max/2 {
		t.Fatalf("StreamMax = %d; the test assumes %d", w, max/2)
	}
	var fetches atomic.Int32
	get := func(id chunkstore.ID, d []byte, p cache.Place) {
		t.Helper()
		r, err := c.AcquireIn(context.Background(), id, cache.Plain(func(context.Context) ([]byte, error) {
			fetches.Add(1)
			return d, nil
		}), p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Bytes(), d) {
			t.Fatal("wrong bytes")
		}
		r.Release()
	}
	var other []chunkstore.ID
	for i := range others {
		d, id := chunk(size, byte(200+i))
		get(id, d, cache.PlaceMain)
		other = append(other, id)
	}
	var ids []chunkstore.ID
	var data [][]byte
	for i := range n {
		d, id := chunk(size, byte(i))
		ids, data = append(ids, id), append(data, d)
	}
	for range passes {
		fetches.Store(0)
		for i, id := range ids {
			get(id, data[i], cache.PlaceScan)
		}
		if c.Size() > max {
			t.Fatalf("the cache holds %d bytes, more than its %d", c.Size(), max)
		}
		k := 0
		for _, id := range other {
			if c.Contains(id) {
				k++
			}
		}
		fetched, kept = append(fetched, int(fetches.Load())), append(kept, k)
	}
	return fetched, kept
}

// TestScanFillsFreeRoom: a PlaceScan reader's chunks go into room the main
// LRU has free, so a file read once through a cache with room for it is
// cached: the second pass fetches nothing.
func TestScanFillsFreeRoom(t *testing.T) {
	// 1 MiB of others; a 3 MiB file, larger than the window.
	fetched, kept := scanPasses(t, 16, 48, 2)
	if fetched[0] != 48 || fetched[1] != 0 {
		t.Errorf("fetches per pass: %v; want [48 0]", fetched)
	}
	if kept[0] != 16 || kept[1] != 16 {
		t.Errorf("the other reader's chunks still cached after each pass: %v; want all 16", kept)
	}
}

// TestScanCachesTheSecondPass: where the main LRU has no room, PlaceScan
// keeps the first pass over a file in the stream window, and evicts none of
// the chunks other readers fetched; the second pass caches the chunks the
// window let go of in the main LRU, and the third fetches nothing.
func TestScanCachesTheSecondPass(t *testing.T) {
	// 2 MiB of others leave no room short of the 2 MiB window; the 3 MiB
	// file is larger than the window.
	fetched, kept := scanPasses(t, 32, 48, 3)
	if fetched[0] != 48 || fetched[1] == 0 || fetched[2] != 0 {
		t.Errorf("fetches per pass: %v; want 48, some, 0", fetched)
	}
	if kept[0] != 32 {
		t.Errorf("the first pass evicted %d of the other reader's 32 chunks", 32-kept[0])
	}
}
