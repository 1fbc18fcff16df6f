package chunkstore

import "context"

// Buffers lends the memory chunks are read into, so that a reader streaming
// through a bounded cache reuses the buffers of the chunks it evicts. With
// a fresh allocation per chunk, the kernel faults in (and zeroes) new pages
// for every chunk read: a cold 2 GiB read through the mount took ~420k page
// faults, which cost about as much CPU as reading the chunk files.
type Buffers interface {
	// Get returns a slice of length n. Its contents are undefined.
	Get(n int) []byte
	// Put takes back a slice Get returned, as returned. Nobody may use
	// its memory afterwards.
	Put(b []byte)
}

// BufferedGetter is a Store that can read chunks into lent memory.
type BufferedGetter interface {
	// GetBuffered is Get with the result in memory from bufs: it returns
	// the chunk's bytes and buf, the buffer from bufs that holds them
	// (data lies within it), or a nil buf when data is not lent memory.
	// The caller gives a non-nil buf back with bufs.Put once it no longer
	// uses data. On an error nothing is lent.
	GetBuffered(ctx context.Context, id ID, bufs Buffers) (data, buf []byte, err error)
}

// GetBuffered calls s.GetBuffered if s is a BufferedGetter, and s.Get
// otherwise (with a nil buf). Decorators that embed a Store do not pass
// GetBuffered through by accident: embedding the interface promotes only
// its own methods, so a decorator's Get is what this calls until the
// decorator implements GetBuffered itself.
func GetBuffered(ctx context.Context, s Store, id ID, bufs Buffers) (data, buf []byte, err error) {
	if g, ok := s.(BufferedGetter); ok && bufs != nil {
		return g.GetBuffered(ctx, id, bufs)
	}
	data, err = s.Get(ctx, id)
	return data, nil, err
}

// WithSizeHint returns bufs carrying a hint for the store: the stored form
// of the chunk about to be read is at most size bytes. A store that cannot
// learn an object's size without asking for it (RADOS) reads straight into
// one buffer of that size, instead of into a buffer of the largest chunk's
// size and then copying. A hint that proves too small costs only the
// fallback; it is never trusted for correctness.
func WithSizeHint(bufs Buffers, size int) Buffers {
	if bufs == nil || size <= 0 {
		return bufs
	}
	if h, ok := bufs.(hinted); ok {
		bufs = h.Buffers
	}
	return hinted{bufs, size}
}

// SizeHint returns the hint WithSizeHint put in bufs, 0 if none.
func SizeHint(bufs Buffers) int {
	if h, ok := bufs.(hinted); ok {
		return h.size
	}
	return 0
}

type hinted struct {
	Buffers
	size int
}
