package chunker

import (
	"fmt"
	"io"

	"github.com/casfs/casfs/chunkstore"
)

// Chunker cuts a stream into chunks. Next returns the next chunk and io.EOF
// (with an empty chunk) after the last one. The chunk's Data is only valid
// until the following call to Next: the chunker reuses its buffer so memory
// stays bounded by a few maximum chunk sizes whatever the stream's length.
type Chunker interface {
	Next() (Chunk, error)
}

// Chunk is one piece of the stream.
type Chunk struct {
	Offset int64  // position of Data[0] in the stream
	Data   []byte // valid until the next call to Next
}

// New returns the chunker that cfg names, reading from r.
func New(cfg chunkstore.ChunkerConfig, r io.Reader) (Chunker, error) {
	switch cfg.Algorithm {
	case "fastcdc":
		return NewFastCDC(r, cfg.Min, cfg.Avg, cfg.Max)
	case "fixed":
		return NewFixed(r, cfg.Size)
	}
	return nil, fmt.Errorf("unknown chunker %q", cfg.Algorithm)
}
