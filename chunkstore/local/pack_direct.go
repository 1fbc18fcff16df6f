package local

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directFile is a pack opened with O_DIRECT for reading, and the alignment
// the filesystem asks of a direct read's buffer (statx's STATX_DIOALIGN).
type directFile struct {
	f        *os.File
	memAlign uintptr
	// refused is set once a direct read failed with EINVAL: the
	// filesystem took O_DIRECT and the alignment it gave, and then
	// refused the read after all (some FUSE and network filesystems do).
	// The pack is read through the page cache from then on.
	refused atomic.Bool
}

// How read chooses between direct and page-cache reads: by the page cache
// (isCached), or always one way, for tests.
const (
	directAuto = iota
	directNever
	directAlways
)

var directReads = directAuto

// directFile returns pf's descriptor for direct reads, opening it on the
// first call; nil for a pack opened for one reader only (pf nil), and where
// the filesystem does not do direct I/O or does not say how to align it.
func (s *PackStore) directFile(pf *packFile) *directFile {
	if pf == nil || directReads == directNever {
		return nil
	}
	pf.directOnce.Do(func() {
		f, err := os.OpenFile(s.packPath(pf.n), os.O_RDONLY|unix.O_DIRECT, 0)
		if err != nil {
			return // EINVAL: no direct I/O here (tmpfs before 6.6, ...)
		}
		var st unix.Statx_t
		err = withFd(f, func(fd int) error {
			return unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &st)
		})
		// Records and their spans are aligned to recAlign: direct reads
		// of them need an offset alignment no larger (a power of two, so
		// a divisor).
		if err != nil || st.Mask&unix.STATX_DIOALIGN == 0 || st.Dio_mem_align == 0 || st.Dio_offset_align == 0 ||
			st.Dio_offset_align > recAlign {
			f.Close()
			return
		}
		pf.direct = &directFile{f: f, memAlign: uintptr(st.Dio_mem_align)}
	})
	if pf.direct == nil || pf.direct.refused.Load() {
		return nil
	}
	return pf.direct
}

// fits reports whether a direct read into buf meets the alignment. Records
// start on recAlign boundaries and spans are whole multiples of it, and
// directFile takes only filesystems whose offset alignment divides it
// (alignments are powers of two), so only the buffer's address can miss:
// the Go runtime page-aligns large allocations, small ones may not be.
func (d *directFile) fits(buf []byte) bool {
	return len(buf) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(buf)))%d.memAlign == 0
}

// directPread reads into buf at off, bypassing the page cache. A record at the end
// of a pack may end before its span does: the read is then short. It is a
// variable so tests can make the filesystem refuse.
var directPread = func(d *directFile, buf []byte, off int64) (n int, err error) {
	err = withFd(d.f, func(fd int) (err error) {
		for {
			n, err = unix.Pread(fd, buf, off)
			if err != unix.EINTR {
				return err
			}
		}
	})
	return n, err
}

// isCached reports whether the n bytes of f at off are all in the page
// cache, or some of them are dirty or being written back (cachestat(2),
// Linux 6.5; false where it is missing, so reads go direct).
func isCached(f *os.File, off int64, n int) bool {
	if directReads == directAlways {
		return false
	}
	pages := (off+int64(n)+int64(os.Getpagesize())-1)/int64(os.Getpagesize()) - off/int64(os.Getpagesize())
	var st unix.Cachestat_t
	err := withFd(f, func(fd int) error {
		return unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(off), Len: uint64(n)}, &st, 0)
	})
	return err == nil && (int64(st.Cache) >= pages || st.Dirty > 0 || st.Writeback > 0)
}

func (d *directFile) Close() error { return d.f.Close() }
