package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
)

func withDirectReads(t *testing.T, mode int) {
	old := directReads
	directReads = mode
	t.Cleanup(func() { directReads = old })
}

// requireDirect fails (or, without CASFS_REQUIRE_EXTERNAL, skips) a test
// whose temp dir's filesystem does not do direct I/O, where reads can only
// go through the page cache and the test would prove nothing.
func requireDirect(t *testing.T, s *PackStore, id chunkstore.ID) {
	t.Helper()
	l, _, _ := s.locate(id)
	pf, _, done, err := s.file(l.pack)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if s.directFile(pf) == nil {
		cannotTell(t, "the filesystem of "+s.dir+" does not do direct I/O (statx STATX_DIOALIGN)")
	}
}

// cannotTell ends a test this machine cannot run: a skip, or a failure when
// CASFS_REQUIRE_EXTERNAL is set (as in CI), which must not pass by skipping.
func cannotTell(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CASFS_REQUIRE_EXTERNAL") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestPackReadDirect: the conformance suite and the damage test again with
// every read direct, which in the others happens only for records that have
// left the page cache.
func TestPackReadDirect(t *testing.T) {
	withDirectReads(t, directAlways)
	t.Run("works", func(t *testing.T) {
		s := mustOpenPacks(t, newPackStore(t), Options{})
		requireDirect(t, s, put(t, s, 1))
	})
	t.Run("conformance", TestPackConformance)
	t.Run("encoded", TestPackConformanceEncoded)
	t.Run("corrupt", TestPackCorruptOnDisk)
}

// dropCache writes back and drops the page cache of every open pack of s.
func dropCache(t *testing.T, s *PackStore) {
	t.Helper()
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pf := range s.open {
		_ = withFd(pf.f, func(fd int) error {
			if err := unix.Fdatasync(fd); err != nil {
				t.Fatal(err)
			}
			return unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
		})
	}
}

// cachedPages is how many pages of chunk id's record are in the page cache.
func cachedPages(t *testing.T, s *PackStore, id chunkstore.ID) uint64 {
	t.Helper()
	l, ok, err := s.locate(id)
	if err != nil || !ok {
		t.Fatalf("locate %s: %v %v", id.Str(), ok, err)
	}
	f, err := os.Open(s.packPath(l.pack))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Cachestat_t
	r := unix.CachestatRange{Off: uint64(l.off), Len: uint64(l.span())}
	if err := unix.Cachestat(uint(f.Fd()), &r, &st, 0); err != nil {
		cannotTell(t, fmt.Sprintf("cachestat(2) (Linux 6.5): %v", err))
	}
	return st.Cache
}

// TestPackReadChoosesDirect: a record out of the page cache is read without
// bringing it in; one in the page cache, or in a buffer direct I/O cannot
// use, is read through it; every way gives the chunk's bytes.
func TestPackReadChoosesDirect(t *testing.T) {
	ctx := context.Background()
	s := mustOpenPacks(t, newPackStore(t), Options{})
	// Chunks of 64-100 KiB: make gives buffers that large page-aligned.
	seeds := []uint64{100, 101, 102, 103, 112, 113}
	var ids []chunkstore.ID
	for _, seed := range seeds {
		ids = append(ids, put(t, s, seed))
	}
	requireDirect(t, s, ids[0])
	if cachedPages(t, s, ids[0]) == 0 {
		t.Fatal("a chunk just put is not in the page cache: this test cannot tell the two reads apart")
	}
	dropCache(t, s)
	for i, id := range ids {
		if n := cachedPages(t, s, id); n != 0 {
			t.Fatalf("chunk %d: %d pages still cached after dropping them", i, n)
		}
	}
	check := func(what string, i int, data []byte, err error) {
		t.Helper()
		if _, want := testChunk(seeds[i]); err != nil || !bytes.Equal(data, want) {
			t.Fatalf("%s of chunk %d: %v, or wrong bytes", what, i, err)
		}
	}

	data, err := s.Get(ctx, ids[0])
	check("Get", 0, data, err)
	if n := cachedPages(t, s, ids[0]); n != 0 {
		t.Errorf("Get of an uncached chunk brought %d pages into the page cache: it was not read direct", n)
	}
	data, buf, err := s.GetBuffered(ctx, ids[1], &lender{})
	check("GetBuffered", 1, data, err)
	if n := cachedPages(t, s, ids[1]); n != 0 || len(buf) != int(alignUp(recHeader+int64(len(data)))) {
		t.Errorf("GetBuffered of an uncached chunk: %d pages cached, a buffer of %d bytes: it was not read direct", n, len(buf))
	}

	// A buffer not aligned as direct I/O needs: through the page cache.
	data, _, err = s.GetBuffered(ctx, ids[2], &lender{skew: 8})
	check("GetBuffered into a misaligned buffer", 2, data, err)
	if cachedPages(t, s, ids[2]) == 0 {
		t.Errorf("a read into a misaligned buffer went direct")
	}
	// Now cached: read through the page cache again.
	data, _, err = s.GetBuffered(ctx, ids[2], &lender{})
	check("GetBuffered of a cached chunk", 2, data, err)
	l, _, _ := s.locate(ids[2])
	_, f, done, _ := s.file(l.pack)
	defer done()
	if !isCached(f, l.off, recHeader+int(l.n)) {
		t.Errorf("isCached: false for a record just read through the page cache")
	}
	l3, _, _ := s.locate(ids[3])
	if isCached(f, l3.off, recHeader+int(l3.n)) {
		t.Errorf("isCached: true for a record dropped from the page cache")
	}
	// A record with dirty pages is cached too (a direct read would wait
	// for their writeback).
	id := put(t, s, 114)
	l, _, _ = s.locate(id)
	_, f2, done2, _ := s.file(l.pack)
	defer done2()
	if !isCached(f2, l.off, recHeader+int(l.n)) {
		t.Errorf("isCached: false for a record just put")
	}
}

// lender lends buffers from make, skew bytes into a larger allocation.
type lender struct{ skew int }

func (l *lender) Get(n int) []byte { return make([]byte, n+l.skew)[l.skew:] }
func (l *lender) Put([]byte)       {}

// TestPackDirectRefused: a filesystem that takes O_DIRECT and then refuses
// the reads (EINVAL) gets them through the page cache instead, and is not
// asked again for that pack.
func TestPackDirectRefused(t *testing.T) {
	withDirectReads(t, directAlways)
	s := mustOpenPacks(t, newPackStore(t), Options{})
	seeds := []uint64{100, 101, 102}
	var ids []chunkstore.ID
	for _, seed := range seeds {
		ids = append(ids, put(t, s, seed))
	}
	requireDirect(t, s, ids[0])
	dropCache(t, s)
	calls := 0
	old := directPread
	directPread = func(*directFile, []byte, int64) (int, error) { calls++; return 0, unix.EINVAL }
	t.Cleanup(func() { directPread = old })
	for i, id := range ids {
		if _, want := testChunk(seeds[i]); !bytes.Equal(mustGet(t, s, id), want) {
			t.Fatalf("chunk %d: wrong bytes after the direct read was refused", i)
		}
	}
	if calls != 1 {
		t.Errorf("%d direct reads tried; want 1, then none for that pack", calls)
	}
	// Another error is an error: it is not retried through the page cache.
	l, _, _ := s.locate(ids[0])
	pf, _, done, _ := s.file(l.pack)
	done()
	pf.direct.refused.Store(false)
	directPread = func(*directFile, []byte, int64) (int, error) { return -1, unix.EIO }
	if _, err := s.Get(context.Background(), ids[0]); !errors.Is(err, unix.EIO) {
		t.Errorf("Get with the disk failing: %v; want EIO", err)
	}
}
