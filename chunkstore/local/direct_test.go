package local

import (
	"bytes"
	"context"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
)

// alignedBufs lends buffers the way the mount's cache does: aligned, with
// room for whole blocks.
type alignedBufs struct{ lent int }

func (a *alignedBufs) Get(n int) []byte {
	a.lent++
	c := (n + directAlign - 1) &^ (directAlign - 1)
	b := make([]byte, c+directAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) % directAlign)
	if off != 0 {
		off = directAlign - off
	}
	b = b[off : off+c]
	for i := range b {
		b[i] = 0xa5
	}
	return b[:n]
}

func (a *alignedBufs) Put([]byte) { a.lent-- }

// resident counts the pages of the file at p that are in the page cache.
func resident(t *testing.T, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size == 0 {
		return 0
	}
	m, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+4095)/4096)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// GetBuffered into aligned buffers reads past the page cache (where the
// filesystem allows O_DIRECT) and returns exactly the stored bytes, whatever
// their length relative to the block size; into other buffers it reads
// through the page cache.
func TestGetBufferedDirect(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, newStore(t), Options{})
	for _, size := range []int{1, 4095, 4096, 4097, 3 * 4096, 1<<20 + 3} {
		data := chunkstoretest.RandomBytes(uint64(size), size)
		id := chunkstore.HashBLAKE3.Sum(data)
		if err := s.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		p := s.path(id)
		// Put leaves the written pages cached; drop them (they are
		// clean after its fsync) so a buffered read would bring them in.
		fd, err := unix.Open(p, unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
		unix.Close(fd)
		before := resident(t, p)

		bufs := &alignedBufs{}
		got, buf, err := s.GetBuffered(ctx, id, bufs)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: GetBuffered: %v, equal %v", size, err, bytes.Equal(got, data))
		}
		bufs.Put(buf)
		if s.noDirect.Load() {
			t.Logf("the filesystem of %s refuses O_DIRECT; read through the page cache", s.dir)
		} else if after := resident(t, p); after > before {
			t.Errorf("%d bytes: %d pages cached before the read, %d after: not read with O_DIRECT", size, before, after)
		}

		// An unaligned buffer: through the page cache, same bytes.
		l := chunkstoretest.NewLender(t)
		got, buf, err = s.GetBuffered(ctx, id, l)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes into a plain buffer: %v", size, err)
		}
		l.Put(buf)
		l.Check()
	}
}
