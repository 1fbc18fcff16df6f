package cache

import (
	"os"
	"testing"
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
	p := newBufPool(3 << 20)
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
	p := newBufPool(0)
	b := p.Get(1 << 20)
	whole := wholePages(b)
	vec := make([]byte, len(whole)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&whole[0])), uintptr(len(whole)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	if n != len(vec) {
		t.Errorf("%d of %d pages of a new buffer are resident; want all", n, len(vec))
	}
}
