package chunker

import (
	"fmt"
	"io"

	"github.com/casfs/casfs/chunkstore"
)

// fixed cuts every size bytes. It reads each chunk straight into its buffer,
// so it never copies.
type fixed struct {
	r   io.Reader
	buf []byte
	off int64 // stream offset of the next chunk
	eof bool
	err error // sticky: once reading failed, every later Next returns it
}

// NewFixed returns a chunker that cuts r into chunks of size bytes; the last
// chunk may be shorter. size must be between 64 and chunkstore.MaxChunkSize.
func NewFixed(r io.Reader, size int) (Chunker, error) {
	if r == nil {
		return nil, fmt.Errorf("fixed chunker: nil reader")
	}
	if _, err := newFixedCut(size); err != nil {
		return nil, err
	}
	return &fixed{r: r, buf: getBuf(size)}, nil
}

// newFixedCut checks size and returns the fixed chunker's cut rule.
func newFixedCut(size int) (fixedCut, error) {
	if size < 64 || size > chunkstore.MaxChunkSize {
		return 0, fmt.Errorf("fixed chunk size %d: need 64 <= size <= %d", size, chunkstore.MaxChunkSize)
	}
	return fixedCut(size), nil
}

func (c *fixed) Next() (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	if c.eof {
		return Chunk{}, io.EOF
	}
	n, eof, err := fill(c.r, c.buf)
	if err != nil {
		// The bytes read before the failure are dropped rather than returned
		// as a short chunk: a short chunk in the middle of a stream would
		// not be the chunk a successful read makes.
		c.err = err
		putBuf(c.buf)
		c.buf = nil
		return Chunk{}, err
	}
	c.eof = eof
	if n == 0 {
		putBuf(c.buf)
		c.buf = nil
		return Chunk{}, io.EOF
	}
	ch := Chunk{Offset: c.off, Data: c.buf[:n:n]}
	c.off += int64(n)
	return ch, nil
}
