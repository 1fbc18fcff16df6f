package chunkstoretest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// Run checks every clause of the Store contract that one instance can show.
// open must return a new, empty Store each time it is called; the suite closes
// it when the subtest that opened it ends.
func Run(t *testing.T, open func(t *testing.T) chunkstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s chunkstore.Store)
	}{
		{"Properties", testProperties},
		{"RoundTrip", testRoundTrip},
		{"NotRetained", testNotRetained},
		{"IdempotentPut", testIdempotentPut},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"ListStops", testListStops},
		{"Concurrent", testConcurrent},
		{"Sync", testSync},
		{"SyncConcurrent", testSyncConcurrent},
		{"Cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, openOwned(t, open))
		})
	}
	t.Run("Toucher", func(t *testing.T) {
		s := openOwned(t, open)
		if _, ok := s.(chunkstore.Toucher); !ok {
			t.Skip("not a chunkstore.Toucher")
		}
		testToucher(t, s)
	})
}

// testToucher checks the time-based deletion shared stores offer gc. Stores
// may keep change times in whole seconds (RADOS does), so the steps are
// more than a second apart and the checks allow a second of slack.
func testToucher(t *testing.T, s chunkstore.Store) {
	ctx := context.Background()
	ts := s.(chunkstore.Toucher)
	cs := randomChunks(7, 3, 1000)
	old, touched, fresh := cs[0], cs[1], cs[2]

	if ok, err := ts.Touch(ctx, old.id); err != nil || ok {
		t.Fatalf("Touch of a missing chunk: %v, %v; want false, nil", ok, err)
	}
	mustHave(t, s, old.id, false)
	if _, err := ts.DeleteIfIdle(ctx, old.id, time.Now()); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("DeleteIfIdle of a missing chunk: %v, want ErrNotFound", err)
	}

	mustPut(t, s, old)
	mustPut(t, s, touched)
	time.Sleep(2100 * time.Millisecond)
	mid := time.Now()
	time.Sleep(1100 * time.Millisecond)
	if ok, err := ts.Touch(ctx, touched.id); err != nil || !ok {
		t.Fatalf("Touch of a stored chunk: %v, %v; want true, nil", ok, err)
	}
	mustPut(t, s, fresh)

	// Put or touched after mid: kept, and still whole.
	for _, c := range []chunk{touched, fresh} {
		if del, err := ts.DeleteIfIdle(ctx, c.id, mid); err != nil || del {
			t.Fatalf("DeleteIfIdle of a chunk changed after since: %v, %v; want false, nil", del, err)
		}
		mustGet(t, s, c)
	}
	// Put before mid and not touched since: deleted.
	if del, err := ts.DeleteIfIdle(ctx, old.id, mid); err != nil || !del {
		t.Fatalf("DeleteIfIdle of an idle chunk: %v, %v; want true, nil", del, err)
	}
	mustBeMissing(t, s, old.id)
	if ok, err := ts.Touch(ctx, old.id); err != nil || ok {
		t.Fatalf("Touch after DeleteIfIdle: %v, %v; want false, nil", ok, err)
	}
	// Everything is idle since a time after the last change.
	time.Sleep(1100 * time.Millisecond)
	later := time.Now().Add(1100 * time.Millisecond)
	if del, err := ts.DeleteIfIdle(ctx, touched.id, later); err != nil || !del {
		t.Fatalf("DeleteIfIdle of a chunk touched before since: %v, %v; want true, nil", del, err)
	}
	mustBeMissing(t, s, touched.id)
}

// RunReopen runs Run and then checks read-after-write across instances:
// what one Store put or deleted, the next Store on the same location sees.
// reopen must close s and return a new Store on the same location.
func RunReopen(t *testing.T, open func(t *testing.T) chunkstore.Store,
	reopen func(t *testing.T, s chunkstore.Store) chunkstore.Store) {
	t.Helper()
	Run(t, open)
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open, reopen) })
}

// openOwned opens a store and closes it at the end of t.
func openOwned(t *testing.T, open func(t *testing.T) chunkstore.Store) chunkstore.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// chunk is test data with its real fingerprint.
type chunk struct {
	id   chunkstore.ID
	data []byte
}

func newChunk(data []byte) chunk {
	return chunk{id: chunkstore.HashBLAKE3.Sum(data), data: data}
}

// randomChunks returns n distinct chunks of sizes in [1, maxSize].
func randomChunks(seed uint64, n, maxSize int) []chunk {
	r := rand.New(rand.NewPCG(seed, 1))
	cs := make([]chunk, n)
	for i := range cs {
		cs[i] = newChunk(RandomBytes(seed<<16+uint64(i), 1+r.IntN(maxSize)))
	}
	return cs
}

func mustPut(t *testing.T, s chunkstore.Store, c chunk) {
	t.Helper()
	if err := s.Put(context.Background(), c.id, c.data); err != nil {
		t.Fatalf("Put %s (%d bytes): %v", c.id.Str(), len(c.data), err)
	}
}

func mustGet(t *testing.T, s chunkstore.Store, c chunk) {
	t.Helper()
	got, err := s.Get(context.Background(), c.id)
	if err != nil {
		t.Fatalf("Get %s: %v", c.id.Str(), err)
	}
	if !bytes.Equal(got, c.data) {
		t.Fatalf("Get %s: got %d bytes that differ from the %d put", c.id.Str(), len(got), len(c.data))
	}
	if _, ok := s.(chunkstore.BufferedGetter); !ok {
		return
	}
	// No size hint, the right one, one too small (a store must not trust
	// it) and one too large.
	for _, hint := range []int{0, len(c.data), len(c.data) / 2, 2*len(c.data) + 64} {
		l := NewLender(t)
		data, buf, err := chunkstore.GetBuffered(context.Background(), s, c.id, chunkstore.WithSizeHint(l, hint))
		if err != nil {
			t.Fatalf("GetBuffered %s, size hint %d: %v", c.id.Str(), hint, err)
		}
		if !bytes.Equal(data, c.data) {
			t.Fatalf("GetBuffered %s, size hint %d: got %d bytes that differ from the %d put", c.id.Str(), hint, len(data), len(c.data))
		}
		if buf != nil {
			if len(data) > 0 && !within(data, buf) {
				t.Errorf("GetBuffered %s, size hint %d: the data is not in the buffer returned with it", c.id.Str(), hint)
			}
			l.Put(buf)
		}
		l.Check()
	}
}

// within reports whether the bytes of a lie in b's array.
func within(a, b []byte) bool {
	b = b[:cap(b)]
	for i := range b {
		if &b[i] == &a[0] {
			return i+len(a) <= len(b)
		}
	}
	return false
}

func mustHave(t *testing.T, s chunkstore.Store, id chunkstore.ID, want bool) {
	t.Helper()
	ok, err := s.Has(context.Background(), id)
	if err != nil {
		t.Fatalf("Has %s: %v", id.Str(), err)
	}
	if ok != want {
		t.Fatalf("Has %s = %v, want %v", id.Str(), ok, want)
	}
}

func mustBeMissing(t *testing.T, s chunkstore.Store, id chunkstore.ID) {
	t.Helper()
	mustHave(t, s, id, false)
	got, err := s.Get(context.Background(), id)
	if !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("Get of missing %s: got %d bytes, err %v; want an error matching ErrNotFound", id.Str(), len(got), err)
	}
	if got != nil {
		t.Errorf("Get of missing %s returned %d bytes along with its error", id.Str(), len(got))
	}
	if _, ok := s.(chunkstore.BufferedGetter); ok {
		l := NewLender(t)
		data, buf, err := chunkstore.GetBuffered(context.Background(), s, id, l)
		if !errors.Is(err, chunkstore.ErrNotFound) || data != nil || buf != nil {
			t.Fatalf("GetBuffered of missing %s: %d bytes, err %v; want only an error matching ErrNotFound", id.Str(), len(data), err)
		}
		l.Check()
	}
}

// listAll returns what List reports, failing on a duplicate or a bad size.
func listAll(t *testing.T, s chunkstore.Store) map[chunkstore.ID]int64 {
	t.Helper()
	seen := map[chunkstore.ID]int64{}
	err := s.List(context.Background(), func(info chunkstore.Info) error {
		if _, dup := seen[info.ID]; dup {
			t.Errorf("List reported %s twice", info.ID.Str())
		}
		if info.Size < 0 {
			t.Errorf("List reported %s with size %d", info.ID.Str(), info.Size)
		}
		seen[info.ID] = info.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return seen
}

// checkList checks that List reports exactly cs, with a positive size for
// every non-empty chunk (stored sizes may differ from len(data): decorators
// compress and frame).
func checkList(t *testing.T, s chunkstore.Store, cs []chunk) {
	t.Helper()
	seen := listAll(t, s)
	want := map[chunkstore.ID]bool{}
	for _, c := range cs {
		want[c.id] = true
		size, ok := seen[c.id]
		switch {
		case !ok:
			t.Errorf("List did not report %s", c.id.Str())
		case len(c.data) > 0 && size <= 0:
			t.Errorf("List reported %s (%d bytes put) with size %d", c.id.Str(), len(c.data), size)
		}
	}
	for id := range seen {
		if !want[id] {
			t.Errorf("List reported %s, which is not stored", id.Str())
		}
	}
}

func testProperties(t *testing.T, s chunkstore.Store) {
	p := s.Properties()
	if p.Name == "" {
		t.Error("Properties().Name is empty")
	}
	if p.Concurrency < 1 {
		t.Errorf("Properties().Concurrency = %d, want >= 1", p.Concurrency)
	}
	if p.MaxChunkSize != 0 && p.MaxChunkSize < chunkstore.MaxChunkSize {
		t.Errorf("Properties().MaxChunkSize = %d, below the %d that chunkers may produce",
			p.MaxChunkSize, chunkstore.MaxChunkSize)
	}
}

func testRoundTrip(t *testing.T, s chunkstore.Store) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{0x42}},
		{"zeros 64KiB", make([]byte, 64<<10)},
		{"text 3MiB", TextBytes(1, 3<<20)},
		{"random 5MiB", RandomBytes(2, 5<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChunk(tc.data)
			mustHave(t, s, c.id, false)
			mustPut(t, s, c)
			mustHave(t, s, c.id, true)
			mustGet(t, s, c)
		})
	}
}

// testNotRetained checks that Put copies its input and Get hands out a slice
// the caller may change: a store that shares buffers corrupts chunks silently.
func testNotRetained(t *testing.T, s chunkstore.Store) {
	orig := RandomBytes(3, 1000)
	c := newChunk(bytes.Clone(orig))
	mustPut(t, s, c)
	c.data[0] ^= 0xff
	c.data = orig
	mustGet(t, s, c)

	got, err := s.Get(context.Background(), c.id)
	if err != nil {
		t.Fatal(err)
	}
	clear(got)
	mustGet(t, s, c)
}

func testIdempotentPut(t *testing.T, s chunkstore.Store) {
	c := newChunk(TextBytes(4, 100<<10))
	mustPut(t, s, c)
	before := listAll(t, s)[c.id]
	mustPut(t, s, newChunk(bytes.Clone(c.data)))
	mustGet(t, s, c)
	after := listAll(t, s)
	if len(after) != 1 || after[c.id] != before {
		t.Errorf("after a second Put, List = %v; want only %s with size %d", after, c.id.Str(), before)
	}
}

func testMissing(t *testing.T, s chunkstore.Store) {
	missing := chunkstore.HashBLAKE3.Sum([]byte("never stored"))
	mustBeMissing(t, s, missing)
	err := s.Delete(context.Background(), missing)
	if !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("Delete of missing %s: %v; want an error matching ErrNotFound", missing.Str(), err)
	}
	// A missing ID next to a stored one: a store must not answer by prefix.
	c := newChunk([]byte("stored"))
	mustPut(t, s, c)
	mustBeMissing(t, s, missing)
}

func testDelete(t *testing.T, s chunkstore.Store) {
	cs := randomChunks(5, 3, 10<<10)
	for _, c := range cs {
		mustPut(t, s, c)
	}
	// Read it first: a caching decorator must not serve it after Delete.
	mustGet(t, s, cs[0])
	ctx := context.Background()
	if err := s.Delete(ctx, cs[0].id); err != nil {
		t.Fatalf("Delete %s: %v", cs[0].id.Str(), err)
	}
	mustBeMissing(t, s, cs[0].id)
	checkList(t, s, cs[1:])
	for _, c := range cs[1:] {
		mustGet(t, s, c)
	}
	if err := s.Delete(ctx, cs[0].id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("second Delete of %s: %v; want an error matching ErrNotFound", cs[0].id.Str(), err)
	}
	// Garbage collection deletes and a later backup puts the same chunk back.
	mustPut(t, s, cs[0])
	mustGet(t, s, cs[0])
	checkList(t, s, cs)
}

func testList(t *testing.T, s chunkstore.Store) {
	cs := randomChunks(6, 40, 20<<10)
	cs = append(cs, newChunk(nil), newChunk(TextBytes(6, 50<<10)))
	for _, c := range cs {
		mustPut(t, s, c)
	}
	checkList(t, s, cs)
}

func testListEmpty(t *testing.T, s chunkstore.Store) {
	if got := listAll(t, s); len(got) != 0 {
		t.Errorf("List of a new store reported %d chunks", len(got))
	}
}

func testListStops(t *testing.T, s chunkstore.Store) {
	for _, c := range randomChunks(7, 5, 1000) {
		mustPut(t, s, c)
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.List(context.Background(), func(chunkstore.Info) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v; want the error fn returned", err)
	}
	if calls != 1 {
		t.Errorf("List called fn %d times after it returned an error; want 1", calls)
	}
}

// testConcurrent has many goroutines put and get the same and different
// chunks at once. Run it under -race; it also catches stores whose
// concurrent Puts of one ID expose a half-written chunk.
func testConcurrent(t *testing.T, s chunkstore.Store) {
	const workers = 16
	shared := randomChunks(8, 8, 64<<10)
	own := make([][]chunk, workers)
	for w := range own {
		own[w] = randomChunks(100+uint64(w), 4, 32<<10)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			order := append(append([]chunk(nil), shared...), own[w]...)
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, c := range order {
				if err := s.Put(ctx, c.id, c.data); err != nil {
					t.Errorf("worker %d: Put %s: %v", w, c.id.Str(), err)
					return
				}
			}
			// Shared chunks may be being put by other workers right now:
			// a Get sees either nothing or the whole chunk.
			for _, c := range order {
				got, err := s.Get(ctx, c.id)
				if err != nil {
					t.Errorf("worker %d: Get %s: %v", w, c.id.Str(), err)
					return
				}
				if !bytes.Equal(got, c.data) {
					t.Errorf("worker %d: Get %s: wrong data (%d bytes, want %d)", w, c.id.Str(), len(got), len(c.data))
				}
				if ok, err := s.Has(ctx, c.id); err != nil || !ok {
					t.Errorf("worker %d: Has %s = %v, %v after Put", w, c.id.Str(), ok, err)
				}
			}
		})
	}
	wg.Wait()
	all := append([]chunk(nil), shared...)
	for _, o := range own {
		all = append(all, o...)
	}
	checkList(t, s, all)
}

func mustSync(t *testing.T, s chunkstore.Store) {
	t.Helper()
	if err := s.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// testSync checks what a test can see of the durability barrier: Sync
// succeeds with and without anything to do, and changes nothing a reader
// sees; chunks put before it and after it, and deleted on either side of
// it, read back as they should. (That Sync makes chunks survive a crash is
// for each store's own crash tests.)
func testSync(t *testing.T, s chunkstore.Store) {
	mustSync(t, s) // nothing put yet
	before := randomChunks(10, 6, 200<<10)
	for _, c := range before {
		mustPut(t, s, c)
	}
	// Deleted before any Sync saw it: it must not come back.
	ctx := context.Background()
	if err := s.Delete(ctx, before[0].id); err != nil {
		t.Fatalf("Delete of a chunk put but not synced: %v", err)
	}
	mustSync(t, s)
	mustBeMissing(t, s, before[0].id)
	kept := before[1:]
	for _, c := range kept {
		mustHave(t, s, c.id, true)
		mustGet(t, s, c)
	}
	checkList(t, s, kept)
	mustSync(t, s) // nothing new

	// Put again what is synced, put new chunks, delete a synced one.
	after := randomChunks(11, 3, 50<<10)
	mustPut(t, s, kept[0])
	for _, c := range after {
		mustPut(t, s, c)
	}
	if err := s.Delete(ctx, kept[1].id); err != nil {
		t.Fatalf("Delete of a synced chunk: %v", err)
	}
	all := append(append([]chunk(nil), kept[:1]...), kept[2:]...)
	all = append(all, after...)
	checkList(t, s, all)
	mustSync(t, s)
	mustBeMissing(t, s, kept[1].id)
	for _, c := range all {
		mustGet(t, s, c)
	}
	checkList(t, s, all)
	// Garbage collection deleted it and a later commit puts it back.
	mustPut(t, s, kept[1])
	mustSync(t, s)
	mustGet(t, s, kept[1])
}

// testSyncConcurrent runs commits the way a mount does: several at once,
// each putting its chunks (some shared with the others), syncing and reading
// them back, while a collector deletes chunks of its own. Run it under
// -race.
func testSyncConcurrent(t *testing.T, s chunkstore.Store) {
	const workers, rounds = 6, 4
	shared := randomChunks(12, 4, 64<<10)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				own := randomChunks(200+uint64(w*rounds+r), 3, 48<<10)
				batch := append(append([]chunk(nil), own...), shared[(w+r)%len(shared)])
				for _, c := range batch {
					if err := s.Put(ctx, c.id, c.data); err != nil {
						t.Errorf("worker %d: Put %s: %v", w, c.id.Str(), err)
						return
					}
				}
				if err := s.Sync(ctx); err != nil {
					t.Errorf("worker %d: Sync: %v", w, err)
					return
				}
				for _, c := range batch {
					got, err := s.Get(ctx, c.id)
					if err != nil || !bytes.Equal(got, c.data) {
						t.Errorf("worker %d: Get %s after Sync: %d bytes, %v", w, c.id.Str(), len(got), err)
						return
					}
				}
			}
		})
	}
	garbage := randomChunks(13, 8, 16<<10)
	wg.Go(func() {
		for _, c := range garbage {
			if err := s.Put(ctx, c.id, c.data); err != nil {
				t.Errorf("collector: Put %s: %v", c.id.Str(), err)
				return
			}
			if err := s.Delete(ctx, c.id); err != nil {
				t.Errorf("collector: Delete %s: %v", c.id.Str(), err)
				return
			}
			if err := s.Sync(ctx); err != nil {
				t.Errorf("collector: Sync: %v", err)
				return
			}
		}
	})
	wg.Wait()
	for _, c := range garbage {
		mustBeMissing(t, s, c.id)
	}
	for _, c := range shared {
		mustGet(t, s, c)
	}
}

// testCancelled checks that a done context stops every method before it
// changes anything.
func testCancelled(t *testing.T, s chunkstore.Store) {
	present := newChunk([]byte("present"))
	mustPut(t, s, present)
	absent := newChunk([]byte("absent"))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v; want an error matching context.Canceled", op, err)
		}
	}
	check("Put", s.Put(ctx, absent.id, absent.data))
	got, err := s.Get(ctx, present.id)
	check("Get", err)
	if got != nil {
		t.Errorf("Get with a cancelled context returned %d bytes", len(got))
	}
	_, err = s.Has(ctx, present.id)
	check("Has", err)
	check("Delete", s.Delete(ctx, present.id))
	check("Sync", s.Sync(ctx))
	calls := 0
	check("List", s.List(ctx, func(chunkstore.Info) error { calls++; return nil }))
	if calls != 0 {
		t.Errorf("List with a cancelled context called fn %d times", calls)
	}

	mustBeMissing(t, s, absent.id)
	mustGet(t, s, present)
	checkList(t, s, []chunk{present})
}

func testReopen(t *testing.T, open func(t *testing.T) chunkstore.Store,
	reopen func(t *testing.T, s chunkstore.Store) chunkstore.Store) {
	s := open(t)
	// The suite owns whichever instance is current when the test ends.
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cs := randomChunks(9, 5, 100<<10)
	cs = append(cs, newChunk(nil))
	for _, c := range cs {
		mustPut(t, s, c)
	}

	s = reopen(t, s)
	for _, c := range cs {
		mustHave(t, s, c.id, true)
		mustGet(t, s, c)
	}
	checkList(t, s, cs)
	if err := s.Delete(context.Background(), cs[0].id); err != nil {
		t.Fatalf("Delete after reopen: %v", err)
	}
	extra := newChunk([]byte("put after reopen"))
	mustPut(t, s, extra)

	s = reopen(t, s)
	mustBeMissing(t, s, cs[0].id)
	mustGet(t, s, extra)
	checkList(t, s, append(cs[1:], extra))

	// A chunk synced and then deleted, one put and deleted without a
	// Sync: neither comes back.
	gone := newChunk([]byte("synced, then deleted"))
	mustPut(t, s, gone)
	mustSync(t, s)
	never := newChunk([]byte("put and deleted before any Sync"))
	mustPut(t, s, never)
	for _, id := range []chunkstore.ID{gone.id, never.id} {
		if err := s.Delete(context.Background(), id); err != nil {
			t.Fatalf("Delete before reopen: %v", err)
		}
	}
	s = reopen(t, s)
	mustBeMissing(t, s, gone.id)
	mustBeMissing(t, s, never.id)
	checkList(t, s, append(cs[1:], extra))
}
