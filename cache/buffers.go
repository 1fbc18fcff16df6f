package cache

import (
	"math/bits"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Buffer sizes the pool deals in. Smaller chunks are allocated and left
// to the garbage collector (their pages are few); larger ones are rare.
const (
	minPooled = 64 << 10
	maxPooled = 8 << 20
)

// classSize is the capacity the pool gives a buffer of n bytes: n rounded
// up to an eighth of the next power of two, so at most 12.5% is wasted
// and chunk sizes, which vary continuously, share a few dozen classes.
func classSize(n int) int {
	if n < minPooled || n > maxPooled {
		return n
	}
	step := 1 << (bits.Len(uint(n-1)) - 4)
	return (n + step - 1) &^ (step - 1)
}

// nextClass is the class after c (c a class size).
func nextClass(c int) int { return classSize(c + 1) }

// Slabs: the memory pooled buffers are cut from, in blocks of slabSize
// aligned to hugePage, which the kernel is asked to back with transparent
// huge pages (MADV_HUGEPAGE; Linux's default THP mode, "madvise", uses them
// only where asked). On the VMs casfs is benchmarked on, memory on 4 KiB
// pages is slow to use (the hypervisor's part in every TLB miss and first
// touch, we take it; not measured apart): a cold 2 GiB read through the
// mount took 1.7-2.1 s of CPU with buffers on huge pages against 2.5-4.3 s
// on 4 KiB pages (the FUSE reply's copy out of the buffers took half the
// time, the hash ~20% less), and the first touch of fresh memory cost ~1.5
// ms per MiB on 4 KiB pages, even prefaulted, against 0.5-0.9 ms on huge
// pages (see docs/BENCHMARKS.md).
const (
	hugePage = 2 << 20
	slabSize = 16 * hugePage
	// minSlabbed is the smallest pool that gets slabs: a smaller one (a
	// test's tiny cache) is not worth 32 MiB blocks.
	minSlabbed = 64 << 20
)

// bufPool lends chunk buffers by size class and takes them back for reuse:
// what the cache evicts is what the next fetch reads into. It implements
// chunkstore.Buffers.
//
// New buffers are cut from slabs, up to slabMax bytes of them; past that,
// or when the pool has no slabs, they are plain allocations. A buffer cut
// from a slab always comes back to the free lists, as memory already paid
// for. A plain one is kept only while the free plain buffers stay within
// max bytes, and otherwise left to the garbage collector. When the slabs
// are all cut and a plain buffer is needed anyway, free slab buffers of
// other sizes give their memory back (shedLocked). So the pool's resident
// memory is about slabMax plus max, whatever sizes the chunks have.
type bufPool struct {
	mu   sync.Mutex
	free map[int][][]byte // by capacity
	held int64            // bytes of plain buffers in free
	max  int64

	slabs   *slabSet
	rest    []byte // what is not cut yet of the newest slab
	slabMax int64
	// shed holds the free slab buffers whose memory was given back
	// (shedLocked), by their first byte.
	shed map[*byte]bool
}

// slabSet is the slabs of one pool, apart from it so that a cleanup can
// hand them on once the pool is garbage (see newBufPool).
type slabSet struct{ slabs [][]byte }

// newBufPool returns a pool that keeps up to max bytes of free plain
// buffers and cuts up to slabMax bytes of slabs (none if slabMax is under
// minSlabbed).
func newBufPool(max, slabMax int64) *bufPool {
	if slabMax < minSlabbed {
		slabMax = 0
	}
	p := &bufPool{free: map[int][][]byte{}, max: max, slabMax: slabMax, slabs: &slabSet{}, shed: map[*byte]bool{}}
	// Slabs are mapped outside the Go heap (it zeroes memory it
	// reuses, faulting it in as ordinary pages before MADV_HUGEPAGE
	// could apply), so the garbage collector does not free them: once
	// the pool is garbage, and with it every entry that held its
	// buffers, its slabs are emptied and kept for the next pool. They
	// are never unmapped, so a holder of a buffer past its release, a
	// bug, reads zeroes or another chunk's bytes, as with any pooled
	// buffer, and never faults.
	runtime.AddCleanup(p, func(set *slabSet) {
		for _, s := range set.slabs {
			_ = unix.Madvise(s, unix.MADV_DONTNEED)
		}
		spareSlabs.Lock()
		spareSlabs.slabs = append(spareSlabs.slabs, set.slabs...)
		spareSlabs.Unlock()
	}, p.slabs)
	return p
}

// spareSlabs holds the slabs of pools that are gone, emptied.
var spareSlabs struct {
	sync.Mutex
	slabs [][]byte
}

// newSlab returns a spare slab, or maps a new one; nil if mapping fails.
func newSlab() []byte {
	spareSlabs.Lock()
	if n := len(spareSlabs.slabs); n > 0 {
		s := spareSlabs.slabs[n-1]
		spareSlabs.slabs[n-1] = nil
		spareSlabs.slabs = spareSlabs.slabs[:n-1]
		spareSlabs.Unlock()
		return s
	}
	spareSlabs.Unlock()
	// One huge page more than a slab, to cut an aligned slab from; the
	// ends are unmapped again.
	const span = slabSize + hugePage
	m, err := unix.MmapPtr(-1, 0, nil, span, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	base := uintptr(m)
	start := (base + hugePage - 1) &^ (hugePage - 1)
	if head := start - base; head > 0 {
		_ = unix.MunmapPtr(m, head)
	}
	if tail := base + span - (start + slabSize); tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(m, start-base+slabSize), tail)
	}
	slab := unsafe.Slice((*byte)(unsafe.Add(m, start-base)), slabSize)
	// Without THP (or with it off) this fails and the slab is ordinary
	// pages; it still works, only slower.
	_ = unix.Madvise(slab, unix.MADV_HUGEPAGE)
	return slab
}

// inSlab reports whether b was cut from one of the pool's slabs. p.mu must
// be held.
func (p *bufPool) inSlab(b []byte) bool {
	a := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	for _, s := range p.slabs.slabs {
		if base := uintptr(unsafe.Pointer(unsafe.SliceData(s))); a >= base && a < base+uintptr(len(s)) {
			return true
		}
	}
	return false
}

// slabbed is the bytes of the pool's slabs. p.mu must be held.
func (p *bufPool) slabbed() int64 { return int64(len(p.slabs.slabs)) * slabSize }

// cut returns a new buffer of capacity c from a slab, starting a new slab
// if the newest has too little left, or nil past slabMax. p.mu must be
// held.
func (p *bufPool) cut(c int) []byte {
	if len(p.rest) < c {
		if p.slabbed()+slabSize > p.slabMax || c > slabSize {
			return nil
		}
		slab := newSlab()
		if slab == nil {
			return nil
		}
		p.slabs.slabs = append(p.slabs.slabs, slab)
		p.rest = slab
	}
	b := p.rest[:c:c]
	p.rest = p.rest[c:]
	return b
}

// Get returns a buffer of length n, reusing a returned one of n's class or
// of the next two (which wastes at most ~40% instead of allocating).
func (p *bufPool) Get(n int) []byte {
	if n < minPooled || n > maxPooled {
		return make([]byte, n)
	}
	c := classSize(n)
	p.mu.Lock()
	for i, k := 0, c; i < 3 && k <= maxPooled; i, k = i+1, nextClass(k) {
		if l := p.free[k]; len(l) > 0 {
			b := l[len(l)-1]
			l[len(l)-1] = nil
			p.free[k] = l[:len(l)-1]
			shed := false
			if !p.inSlab(b) {
				p.held -= int64(k)
			} else if shed = p.shed[unsafe.SliceData(b)]; shed {
				delete(p.shed, unsafe.SliceData(b))
			}
			p.mu.Unlock()
			if shed {
				prefault(b)
			}
			return b[:n]
		}
	}
	b := p.cut(c)
	if b == nil && p.slabMax > 0 {
		p.shedLocked(int64(c))
	}
	p.mu.Unlock()
	if b == nil {
		b = make([]byte, c)
	}
	prefault(b)
	return b[:n]
}

// shedLocked gives the memory of free slab buffers back to the kernel
// (MADV_DONTNEED; they stay in the free lists, and are faulted in again if
// lent) until at least n bytes are shed or none is left: a plain buffer of
// n bytes is about to be allocated because the slabs are all cut and none
// of their free buffers fits (the chunks read now are of other sizes than
// those read before). So the pool's resident memory stays near slabMax,
// plus max, instead of growing by every such buffer. p.mu must be held.
func (p *bufPool) shedLocked(n int64) {
	for _, l := range p.free {
		for _, b := range l {
			if n <= 0 {
				return
			}
			if !p.inSlab(b) || p.shed[unsafe.SliceData(b)] {
				continue
			}
			_ = unix.Madvise(b, unix.MADV_DONTNEED)
			p.shed[unsafe.SliceData(b)] = true
			n -= int64(cap(b))
		}
	}
}

// Put takes b back: always if it was cut from a slab; if it is a plain
// buffer of a pooled size, while there is room.
func (p *bufPool) Put(b []byte) {
	c := cap(b)
	if c < minPooled || c > maxPooled || classSize(c) != c {
		return
	}
	p.mu.Lock()
	if slab := p.inSlab(b); slab || p.held+int64(c) <= p.max {
		p.free[c] = append(p.free[c], b[:c])
		if !slab {
			p.held += int64(c)
		}
	}
	p.mu.Unlock()
}

// prefault faults in b's pages with one madvise(MADV_POPULATE_WRITE)
// (Linux 5.14; before, the call fails and nothing changes). A new buffer's
// pages are fresh memory, and on this project's VMs each first touch is
// expensive; the decompressor writing a chunk into a new buffer touched
// them one fault at a time, and a first cold read of a 1 GiB compressible
// file took 5.4-6.1 s of CPU, against 4.0-4.2 with the faults taken in one
// call (direct reads into a buffer already fault theirs in the kernel, in
// batches).
func prefault(b []byte) {
	if w := wholePages(b); len(w) > 0 {
		_ = unix.Madvise(w, unix.MADV_POPULATE_WRITE)
	}
}

// wholePages returns the part of b made of whole pages (madvise and
// mincore take page-aligned ranges).
func wholePages(b []byte) []byte {
	ps := os.Getpagesize()
	start := 0
	if p := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % uintptr(ps)); p != 0 {
		start = ps - p
	}
	if start >= len(b) {
		return nil
	}
	return b[start : start+(len(b)-start)/ps*ps]
}
