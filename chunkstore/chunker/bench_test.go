package chunker

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/casfs/casfs/chunkstore"
)

var (
	benchOnce sync.Once
	benchData []byte
)

func benchInput() []byte {
	benchOnce.Do(func() { benchData = testData(64<<20, 1) })
	return benchData
}

func benchChunker(b *testing.B, newChunker func(io.Reader) (Chunker, error)) {
	data := benchInput()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c, err := newChunker(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			ch, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n += len(ch.Data)
		}
		if n != len(data) {
			b.Fatalf("chunked %d bytes of %d", n, len(data))
		}
	}
}

// BenchmarkFastCDC chunks 64 MiB of random data with the default parameters.
func BenchmarkFastCDC(b *testing.B) {
	benchChunker(b, func(r io.Reader) (Chunker, error) {
		return NewFastCDC(r, goldenMin, goldenAvg, goldenMax)
	})
}

// BenchmarkFixed chunks 64 MiB of random data with the default size.
func BenchmarkFixed(b *testing.B) {
	benchChunker(b, func(r io.Reader) (Chunker, error) {
		return NewFixed(r, chunkstore.DefaultFixedSize)
	})
}
