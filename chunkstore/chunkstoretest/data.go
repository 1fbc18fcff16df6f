package chunkstoretest

import (
	"math/rand/v2"
	"strconv"
)

// RandomBytes returns n pseudo-random bytes from seed: incompressible data
// that is the same on every run.
func RandomBytes(seed uint64, n int) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	// ChaCha8.Read never fails.
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}

// words is a small vocabulary for TextBytes; its skewed use (below) gives
// data that compresses about as well as source code or logs do.
var words = []string{
	"the", "chunk", "store", "func", "return", "err", "nil", "if", "for",
	"range", "context", "ctx", "data", "id", "version", "file", "casfs",
	"recipe", "extent", "offset", "size", "error", "struct", "package",
	"import", "var", "const", "type", "interface", "map", "string", "byte",
	"int64", "uint32", "mount", "fuse", "inode", "directory", "catalog",
}

// TextBytes returns n bytes of text-like data from seed: lines of words and
// numbers that compress roughly 3-5× with zstd, like logs or source files.
func TextBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, 0, n+64)
	for len(b) < n {
		// Squaring a uniform variate favours the first words, as real text
		// favours common ones.
		f := r.Float64()
		b = append(b, words[int(f*f*float64(len(words)))]...)
		switch r.IntN(12) {
		case 0:
			b = append(b, '\n')
			for range r.IntN(3) {
				b = append(b, '\t')
			}
		case 1:
			b = append(b, " = "...)
			b = strconv.AppendInt(b, int64(r.IntN(100000)), 10)
			b = append(b, '\n')
		default:
			b = append(b, ' ')
		}
	}
	return b[:n]
}
