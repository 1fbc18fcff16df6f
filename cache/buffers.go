package cache

import (
	"math/bits"
	"os"
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

// bufPool lends chunk buffers by size class and keeps up to max bytes of
// returned ones for reuse: what the cache evicts is what the next fetch
// reads into. It implements chunkstore.Buffers.
type bufPool struct {
	mu   sync.Mutex
	free map[int][][]byte // by capacity
	held int64            // bytes in free
	max  int64
}

func newBufPool(max int64) *bufPool {
	return &bufPool{free: map[int][][]byte{}, max: max}
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
			p.held -= int64(k)
			p.mu.Unlock()
			return b[:n]
		}
	}
	p.mu.Unlock()
	b := make([]byte, n, c)
	prefault(b)
	return b
}

// Put keeps b for reuse if it is a pooled size and there is room.
func (p *bufPool) Put(b []byte) {
	c := cap(b)
	if c < minPooled || c > maxPooled || classSize(c) != c {
		return
	}
	p.mu.Lock()
	if p.held+int64(c) <= p.max {
		p.free[c] = append(p.free[c], b[:c])
		p.held += int64(c)
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
