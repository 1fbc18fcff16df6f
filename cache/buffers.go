package cache

import (
	"math/bits"
	"sync"
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
	return make([]byte, n, c)
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
