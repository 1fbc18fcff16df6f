package cache

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestClassSize(t *testing.T) {
	prev := 0
	for n := minPooled; n <= maxPooled; n += 997 {
		c := classSize(n)
		if c < n || float64(c-n) > float64(n)/8 {
			t.Fatalf("classSize(%d) = %d: too small or wastes more than 1/8", n, c)
		}
		if classSize(c) != c {
			t.Fatalf("classSize(%d) = %d, not a class itself (%d)", n, c, classSize(c))
		}
		if c < prev {
			t.Fatalf("classSize(%d) = %d < %d for a smaller size", n, c, prev)
		}
		if nc := nextClass(c); nc <= c || classSize(nc) != nc {
			t.Fatalf("nextClass(%d) = %d", c, nc)
		}
		prev = c
	}
	for _, n := range []int{0, 1, minPooled - 1, maxPooled + 1} {
		if classSize(n) != n {
			t.Errorf("classSize(%d) = %d for a size that is not pooled", n, classSize(n))
		}
	}
}

func TestBufPool(t *testing.T) {
	p := newBufPool(3<<20, 0)
	a := p.Get(700 << 10)
	if len(a) != 700<<10 || cap(a) != classSize(700<<10) {
		t.Fatalf("Get: len %d cap %d", len(a), cap(a))
	}
	p.Put(a)
	if b := p.Get(690 << 10); &b[:1][0] != &a[:1][0] || len(b) != 690<<10 {
		t.Fatal("a buffer of the same class was not reused")
	}
	// A returned buffer one class up serves too; beyond three it does not.
	big := p.Get(nextClass(classSize(700 << 10)))
	p.Put(big)
	if b := p.Get(700 << 10); &b[:1][0] != &big[:1][0] {
		t.Fatal("a buffer of the next class was not reused")
	}
	// The pool keeps at most max bytes.
	for i := 0; i < 10; i++ {
		p.Put(make([]byte, 1<<20))
	}
	if p.held > p.max {
		t.Fatalf("pool holds %d bytes, max %d", p.held, p.max)
	}
	// Small and odd-sized buffers are not kept.
	p.Put(make([]byte, 1000))
	p.Put(make([]byte, 700<<10+1))
	if _, ok := p.free[1000]; ok {
		t.Fatal("a small buffer was kept")
	}
	if _, ok := p.free[700<<10+1]; ok {
		t.Fatal("a buffer that is not of a class was kept")
	}
}

// TestBufPoolPrefaults: a new pooled buffer's pages are resident before
// anyone writes to it (see prefault).
func TestBufPoolPrefaults(t *testing.T) {
	p := newBufPool(0, 0)
	b := p.Get(1 << 20)
	if n, all := resident(t, b), len(wholePages(b))/os.Getpagesize(); n != all {
		t.Errorf("%d of %d pages of a new buffer are resident; want all", n, all)
	}
}

// TestBufPoolSlabs: new buffers are cut from huge-page-aligned slabs, up to
// slabMax, without overlapping, and come back for reuse even when the pool
// keeps no plain buffers (max 0); past slabMax they are plain allocations.
func TestBufPoolSlabs(t *testing.T) {
	p := newBufPool(0, minSlabbed)
	const n = 8 << 20 // a class of its own: four per slab
	var got [][]byte
	for i := 0; i < int(minSlabbed/n); i++ {
		b := p.Get(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(b), cap(b))
		}
		if a := uintptr(unsafe.Pointer(&b[0])); a%uintptr(os.Getpagesize()) != 0 {
			t.Fatalf("buffer %d at %#x is not page-aligned (direct reads need that)", i, a)
		}
		if !slabbed(p, b) {
			t.Fatalf("buffer %d is not in a slab, with %d of %d bytes of slabs cut", i, p.slabbed(), p.slabMax)
		}
		for j, o := range got {
			if a, c := uintptr(unsafe.Pointer(&o[0])), uintptr(unsafe.Pointer(&b[0])); a < c+n && c < a+n {
				t.Fatalf("buffers %d and %d overlap", j, i)
			}
		}
		got = append(got, b)
	}
	for _, s := range p.slabs.slabs {
		if a := uintptr(unsafe.Pointer(&s[0])); a%hugePage != 0 || len(s) != slabSize {
			t.Fatalf("slab at %#x of %d bytes: not a huge-page-aligned %d", a, len(s), slabSize)
		}
	}
	if p.slabbed() != minSlabbed {
		t.Fatalf("%d bytes of slabs for %d of buffers", p.slabbed(), minSlabbed)
	}
	// Past slabMax: a plain buffer, which a pool of max 0 does not keep.
	plain := p.Get(n)
	if slabbed(p, plain) {
		t.Fatal("a buffer past slabMax came from a slab")
	}
	p.Put(plain)
	if len(p.free[n]) != 0 {
		t.Fatal("a plain buffer was kept by a pool of max 0")
	}
	// Slab buffers all come back, and are what Get hands out next.
	for _, b := range got {
		p.Put(b)
	}
	if len(p.free[n]) != len(got) || p.held != 0 {
		t.Fatalf("%d of %d slab buffers kept, %d plain bytes held", len(p.free[n]), len(got), p.held)
	}
	if b := p.Get(n - 4096); &b[:1][0] != &got[len(got)-1][:1][0] {
		t.Fatal("a returned slab buffer was not reused")
	}
	if p.slabbed() != minSlabbed {
		t.Fatalf("reuse cut new slabs: %d bytes", p.slabbed())
	}
	// A pool under minSlabbed has no slabs.
	if q := newBufPool(0, minSlabbed-1); q.slabMax != 0 {
		t.Fatalf("a pool of %d bytes got slabs", minSlabbed-1)
	}
}

// TestBufPoolHugePages: a slab buffer's memory is backed by transparent
// huge pages once it is faulted in (the point of slabs; see hugePage). It
// needs THP ("always" or "madvise"), as Debian's kernels have by default.
func TestBufPoolHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(mode, []byte("[never]")) {
		msg := fmt.Sprintf("no transparent huge pages here (%q, %v)", bytes.TrimSpace(mode), err)
		if os.Getenv("CASFS_REQUIRE_EXTERNAL") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	p := newBufPool(0, minSlabbed)
	b := p.Get(4 << 20) // prefaulted: covers at least one whole huge page
	huge, err := anonHugeKB(uintptr(unsafe.Pointer(&b[0])))
	if err != nil {
		t.Fatal(err)
	}
	if huge < hugePage>>10 {
		t.Fatalf("the slab holding a new 4 MiB buffer has %d KiB of huge pages; want at least %d", huge, hugePage>>10)
	}
}

// anonHugeKB returns the AnonHugePages of the mapping of this process that
// holds address a, from /proc/self/smaps.
func anonHugeKB(a uintptr) (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		// A mapping's first line starts "lo-hi " in hex; no field line
		// parses so (their names are not hex followed by a dash).
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= a && a < hi
			continue
		}
		if kb, ok := strings.CutPrefix(line, "AnonHugePages:"); ok && in {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no mapping holds %#x in /proc/self/smaps", a)
}

// TestBufPoolSlabsOutliveThePool: the slabs of a pool that is garbage are
// emptied and handed to the next pool, not unmapped (a stale holder must
// not fault) and not leaked (tests make many caches).
func TestBufPoolSlabsOutliveThePool(t *testing.T) {
	p := newBufPool(0, minSlabbed)
	b := p.Get(1 << 20)
	b[0] = 7
	slab := uintptr(unsafe.Pointer(&p.slabs.slabs[0][0]))
	p, b = nil, nil
	spare := func() []byte {
		spareSlabs.Lock()
		defer spareSlabs.Unlock()
		for _, s := range spareSlabs.slabs {
			if uintptr(unsafe.Pointer(&s[0])) == slab {
				return s
			}
		}
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for spare() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the slab of a pool that is gone was not kept for the next pool")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if s := spare(); s[0] != 0 {
		t.Fatalf("a spare slab still holds its old bytes (%d)", s[0])
	}
	spareSlabs.Lock()
	n := len(spareSlabs.slabs)
	spareSlabs.Unlock()
	s := newSlab()
	if s == nil || len(s) != slabSize {
		t.Fatal("newSlab with spares at hand returned no slab")
	}
	spareSlabs.Lock()
	defer spareSlabs.Unlock()
	if len(spareSlabs.slabs) != n-1 {
		t.Fatalf("newSlab mapped a new slab with %d spares at hand", n)
	}
	spareSlabs.slabs = append(spareSlabs.slabs, s)
}

// TestBufPoolShedsSlabsForPlainBuffers: once the slabs are all cut, a chunk
// size none of their free buffers fits gets a plain buffer, and free slab
// buffers give back at least as much memory; lent again, they are faulted
// back in.
func TestBufPoolShedsSlabsForPlainBuffers(t *testing.T) {
	p := newBufPool(0, minSlabbed)
	const big = 8 << 20
	var bigs [][]byte
	for i := 0; i < int(minSlabbed/big); i++ {
		bigs = append(bigs, p.Get(big))
	}
	for _, b := range bigs {
		p.Put(b)
	}
	small := p.Get(256 << 10)
	if slabbed(p, small) {
		t.Fatal("a 256 KiB buffer came from a slab that was all cut")
	}
	if shed := len(p.shed); shed != 1 {
		t.Fatalf("%d free 8 MiB slab buffers shed for one plain 256 KiB buffer; want 1", shed)
	}
	for b := range p.shed {
		if r := resident(t, unsafe.Slice(b, big)); r != 0 {
			t.Fatalf("a shed buffer still has %d resident pages", r)
		}
	}
	// Lent again, every buffer is resident, the shed one included.
	for range bigs {
		b := p.Get(big)
		if r, all := resident(t, b), len(wholePages(b))/os.Getpagesize(); r != all {
			t.Fatalf("a lent 8 MiB buffer has %d of %d pages resident", r, all)
		}
	}
	if len(p.shed) != 0 {
		t.Fatalf("%d buffers still marked shed after being lent", len(p.shed))
	}
}

// slabbed reports whether p cut b from one of its slabs.
func slabbed(p *bufPool, b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inSlab(b)
}

// resident counts the pages of b's whole pages that are resident (mincore).
func resident(t *testing.T, b []byte) int {
	t.Helper()
	whole := wholePages(b)
	vec := make([]byte, len(whole)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&whole[0])), uintptr(len(whole)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
