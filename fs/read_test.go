package fs

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/casfs/casfs/chunkstore"
)

// Reads through a cache much smaller than the files, with chunks large
// enough that their buffers are pooled: chunks are evicted and their memory
// reused all the time while replies still point into it. Every byte read,
// sequentially or at random, by several readers at once, must be the file's.
func TestReadsThroughReusedChunkBuffers(t *testing.T) {
	m := mountChunked(t, chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20},
		func(o *Options) { o.CacheBytes = 2 << 20; o.ReadAhead = 4 })
	files := map[string][]byte{"a": randBytes(12<<20, 21), "b": randBytes(9<<20+12345, 22)}
	for name, data := range files {
		mustWrite(t, m.path(name), data)
	}
	m.unstaged(t)
	h0, m0 := m.fs.cache.Cache.Stats()
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		name := "a"
		if g%2 == 1 {
			name = "b"
		}
		data := files[name]
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// O_DIRECT: every read is a READ, not served from the
			// kernel's page cache.
			f, err := os.OpenFile(m.path(name), os.O_RDONLY|syscall.O_DIRECT, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			if g < 2 { // whole file, sequentially, in odd-sized reads
				got, err := io.ReadAll(io.LimitReader(f, int64(len(data))+1))
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("%s: sequential read: %d bytes, %v; differs", name, len(got), err)
				}
				return
			}
			r := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, 1<<20)
			for i := 0; i < 60; i++ {
				off := r.Int64N(int64(len(data)))
				n, err := f.ReadAt(buf[:r.IntN(len(buf))+1], off)
				if n == 0 && err != nil {
					t.Errorf("%s: ReadAt %d: %v", name, off, err)
					return
				}
				if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					t.Errorf("%s: ReadAt %d (+%d): wrong bytes", name, off, n)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	h1, m1 := m.fs.cache.Cache.Stats()
	t.Logf("cache hits %d, misses %d", h1-h0, m1-m0)
	if m1-m0 < 100 {
		t.Errorf("only %d cache misses: the reads did not go through the chunk cache", m1-m0)
	}
	if s := m.fs.cache.Cache.Size(); s > 2<<20 {
		t.Errorf("cache holds %d bytes, bound %d", s, 2<<20)
	}
}

// A sequential read of a file larger than the cache streams it through the
// cache's stream window: a smaller file read before stays cached, which an
// LRU shared with the stream would have flushed.
func TestLargeFileStreamsPastCache(t *testing.T) {
	m := mountChunked(t, chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20},
		func(o *Options) { o.CacheBytes = 8 << 20; o.ReadAhead = 4 })
	small, large := randBytes(2<<20, 31), randBytes(24<<20, 32)
	mustWrite(t, m.path("small"), small)
	mustWrite(t, m.path("large"), large)
	m.unstaged(t)
	readDirect(t, m.path("small"), small)
	readDirect(t, m.path("large"), large)
	_, m0 := m.fs.cache.Cache.Stats()
	readDirect(t, m.path("small"), small)
	if _, m1 := m.fs.cache.Cache.Stats(); m1 != m0 {
		t.Errorf("re-reading the small file missed the cache %d times: streaming the large one flushed it", m1-m0)
	}
	if s := m.fs.cache.Cache.Size(); s > 2<<20+4<<20+1<<20 {
		t.Errorf("cache holds %d bytes: more than the small file and the stream window", s)
	}
}

// TestMidSizeFileScans: a sequential reader of a file the cache could hold
// but its stream window cannot caches what fits in the room the cache has
// free and reads the rest through the window, pushing out nothing another
// file cached; a second read caches the rest, and the third misses nothing.
// In an empty cache, the first read caches the whole file.
func TestMidSizeFileScans(t *testing.T) {
	newMount := func() *testMount {
		return mountChunked(t, chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20},
			func(o *Options) { o.CacheBytes = 16 << 20; o.ReadAhead = 4 })
	}
	m := newMount()
	c := m.fs.cache.Cache
	if w := c.StreamMax(); w != 8<<20 {
		t.Fatalf("stream window %d; the test assumes 8 MiB", w)
	}
	other, mid := randBytes(6<<20, 34), randBytes(12<<20, 33)
	mustWrite(t, m.path("mid"), mid)
	m.unstaged(t)
	read := func(name string, data []byte) int64 {
		t.Helper()
		_, m0 := c.Stats()
		readDirect(t, m.path(name), data)
		_, m1 := c.Stats()
		return m1 - m0
	}
	if n := read("mid", mid); n == 0 {
		t.Fatal("the first read of mid missed nothing: the test wants an empty cache")
	}
	if n := read("mid", mid); n != 0 {
		t.Errorf("second read of mid into an empty cache missed %d times: the first did not cache it", n)
	}

	// Again, with the cache holding another file first.
	m = newMount()
	c = m.fs.cache.Cache
	mustWrite(t, m.path("other"), other)
	mustWrite(t, m.path("mid"), mid)
	m.unstaged(t)
	read("other", other)
	read("mid", mid)
	if s := c.Size(); s > 16<<20 {
		t.Errorf("after the first read of mid the cache holds %d bytes, more than its 16 MiB", s)
	}
	if n := read("other", other); n != 0 {
		t.Errorf("reading mid pushed %d chunks of the other file out of the cache", n)
	}
	if n := read("mid", mid); n == 0 {
		t.Error("second read of mid missed nothing: the first one pushed other chunks out to cache it all")
	}
	if n := read("mid", mid); n != 0 {
		t.Errorf("third read of mid missed the cache %d times: the second one did not cache the file", n)
	}
}

// TestReadAheadFitsTheWindow: with chunks large for the stream window
// (1 MiB chunks, a 4 MiB window, 16 chunks of read-ahead), a sequential read
// fetches each chunk once: read-ahead stops at half the window, so chunks
// fetched ahead do not push out those about to be read.
func TestReadAheadFitsTheWindow(t *testing.T) {
	m := mountChunked(t, chunkstore.ChunkerConfig{Algorithm: "fixed", Size: 1 << 20},
		func(o *Options) { o.CacheBytes = 8 << 20; o.ReadAhead = 16 })
	c := m.fs.cache.Cache
	if w := c.StreamMax(); w != 4<<20 {
		t.Fatalf("stream window %d; the test assumes 4 MiB", w)
	}
	data := randBytes(24<<20, 34)
	mustWrite(t, m.path("big"), data)
	m.unstaged(t)
	f0 := c.Fetches()
	readDirect(t, m.path("big"), data)
	// The 24 chunks, plus the recipe if it was not cached yet.
	if n := c.Fetches() - f0; n > 25 {
		t.Errorf("a sequential read of 24 chunks fetched %d: chunks read ahead pushed out others before they were read", n)
	}
}

// readDirect reads the file at p with O_DIRECT, so that every read reaches
// casfs rather than the page cache, and fails t unless it holds want.
func readDirect(t *testing.T, p string, want []byte) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes, %v; differs", p, len(got), err)
	}
}
