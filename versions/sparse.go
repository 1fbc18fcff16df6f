package versions

import (
	"errors"
	"io"

	"golang.org/x/sys/unix"
)

// minHole is the shortest hole in a sparse source that chunking skips
// without reading. A file's holes come in filesystem blocks; skipping every
// 4 KiB gap would cut a database's pages into separate tiny chunks, so short
// gaps are read as zeros and chunked with the data around them (an
// all-zero chunk still becomes a hole).
const minHole = 1 << 20

// file is what segments needs of an *os.File.
type file interface {
	io.ReaderAt
	Fd() uintptr
}

// segment is a stretch of a source to chunk: n bytes from off, relative to
// the start of the source; n < 0 means up to its end.
type segment struct{ off, n int64 }

// segments says which parts of src hold data. A section of a file (the
// staging file of a mount, or a file put from disk) is asked with
// SEEK_DATA and SEEK_HOLE, so that a sparse file is chunked by its data,
// not by reading terabytes of holes: truncating a file up to 8 TiB and
// writing its last byte must not make close read 8 TiB of zeros. Anything
// else is one segment, read to its end. read returns the reader of a
// segment.
//
// Chunking restarts at each segment's start: that is a cut point, like
// every other extent start (see WriteFrom), because the same file gives the
// same segments from there on.
func segments(src io.Reader) (segs []segment, length int64, read func(segment) io.Reader) {
	whole := []segment{{0, -1}}
	plain := func(segment) io.Reader { return src }
	sr, ok := src.(*io.SectionReader)
	if !ok {
		return whole, -1, plain
	}
	outer, base, n := sr.Outer()
	f, ok := outer.(file)
	if !ok || n <= 0 {
		return whole, -1, plain
	}
	// sr may have been read from already; only a fresh one is split.
	if pos, err := sr.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		return whole, -1, plain
	}
	fd := int(f.Fd())
	end := base + n
	var out []segment
	for pos := base; pos < end; {
		data, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) || (err == nil && data >= end) {
			break // only a hole is left, up to end
		}
		if err != nil {
			return whole, -1, plain // no SEEK_DATA here: read it all
		}
		// Extend the segment over holes shorter than minHole.
		stop := data
		for {
			hole, err := unix.Seek(fd, stop, unix.SEEK_HOLE)
			if err != nil || hole >= end {
				stop = end
				break
			}
			next, err := unix.Seek(fd, hole, unix.SEEK_DATA)
			if err != nil || next >= end || next-hole >= minHole {
				stop = hole
				break
			}
			stop = next
		}
		out = append(out, segment{data - base, stop - data})
		pos = stop
	}
	return out, n, func(s segment) io.Reader { return io.NewSectionReader(outer, base+s.off, s.n) }
}
