package chunkstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/zeebo/blake3"
)

// IDSize is the length in bytes of a chunk ID.
const IDSize = 32

// ID names a chunk: the digest of its uncompressed bytes.
type ID [IDSize]byte

// ParseID parses the 64-character hex form written by ID.String.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("chunk id %q: want %d hex digits, got %d", s, 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("chunk id %q: %w", s, err)
	}
	return id, nil
}

// String returns the full hex form of the ID.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Str returns a short prefix of the ID for log lines and messages.
func (id ID) Str() string { return hex.EncodeToString(id[:6]) }

// IsZero reports whether id is the zero value, which never names a chunk.
func (id ID) IsZero() bool { return id == ID{} }

// Hash names a fingerprint algorithm recorded in a store's config.
type Hash string

// The supported fingerprints. BLAKE3 is the default because it hashes about
// 2.5× faster than SHA-256 on one core of the machines casfs is built on
// (see docs/BENCHMARKS.md); SHA-256 is kept for stores that need FIPS-style
// primitives.
const (
	HashBLAKE3 Hash = "blake3-256"
	HashSHA256 Hash = "sha256"
)

// Sum returns the ID of data under hash h. It panics on an unknown hash;
// configs are validated when a store is opened, so that cannot happen for a
// hash that came from a store.
func (h Hash) Sum(data []byte) ID {
	switch h {
	case HashBLAKE3:
		return blake3.Sum256(data)
	case HashSHA256:
		return sha256.Sum256(data)
	}
	panic(fmt.Sprintf("chunkstore: unknown hash %q", string(h)))
}

// Valid reports whether h is a hash this build knows.
func (h Hash) Valid() bool { return h == HashBLAKE3 || h == HashSHA256 }
