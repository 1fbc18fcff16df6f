package chunker

import "sync"

// bufPool recycles chunker buffers. A chunker's buffer is a few maximum
// chunk sizes (8 MiB by default), and a mount makes a chunker for every
// commit, most of them of small files: allocating and zeroing a fresh buffer
// each time was a measurable part of committing a small file.
var bufPool sync.Pool // of *[]byte

func getBuf(n int) []byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]byte, n)
}

// putBuf gives b back once its chunker is done with it: after Next has
// returned io.EOF or an error, no Chunk.Data of it may be used any more
// (Data is only valid until the following call to Next).
func putBuf(b []byte) {
	if b != nil {
		bufPool.Put(&b)
	}
}
