package chunkstore

import (
	"encoding/json"
	"errors"
	"fmt"
)

// FormatVersion is the newest store format this build writes and reads.
// Bump it when the layout of stored data changes; Open refuses anything newer.
//
// Format 2 added Layout. Stores are written with the oldest format that
// describes them (see FormatFor), so a casfs that predates a layout
// refuses exactly the stores it cannot read.
const FormatVersion = 2

// Config is recorded once, at init, at the root of every store. It decides how
// bytes are laid out, so it never changes for the life of a store.
type Config struct {
	Format      int           `json:"format"`
	ID          string        `json:"id"` // random, identifies the store in locks and replicas
	Hash        Hash          `json:"hash"`
	Chunker     ChunkerConfig `json:"chunker"`
	Compression string        `json:"compression"` // "zstd" or "none"
	// Layout is how a local directory store keeps its chunks: LayoutFiles
	// (also when empty, as in every format 1 store) or LayoutPacks. Remote
	// stores have their own layout and leave it empty.
	Layout string `json:"layout,omitempty"`
}

// Local store layouts (Config.Layout).
const (
	// LayoutFiles keeps one file per chunk (format 1).
	LayoutFiles = "files"
	// LayoutPacks appends chunks to large pack files and finds them
	// through an index (format 2): no file is created per chunk, and a
	// file's chunks lie one after another on disk.
	LayoutPacks = "packs"
)

// FormatFor returns the format version a store with config c is written
// with: the oldest that knows its layout.
func FormatFor(c Config) int {
	if c.Layout == LayoutPacks {
		return 2
	}
	return 1
}

// ChunkerConfig names a chunker and its parameters (bytes).
type ChunkerConfig struct {
	Algorithm string `json:"algorithm"` // "fastcdc" or "fixed"
	Min       int    `json:"min,omitempty"`
	Avg       int    `json:"avg,omitempty"`
	Max       int    `json:"max,omitempty"`
	Size      int    `json:"size,omitempty"` // fixed chunker only
}

// Compression names.
const (
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// Chunker defaults. FastCDC's nominal average is 640 KiB: with min-size
// skipping, real data (a tar of a source tree) is cut into chunks of
// ~0.75 MiB on average, so a 1 GiB file is ~1400 chunks (small recipes, few
// round trips to a remote store) while an edit re-stores well under a
// megabyte. Measured against 1 MiB nominal (real mean 1.3 MB) on six
// versions of a 200 MB tar with 20 small edits each: 82 MB stored instead
// of 91 MB, against restic's 86 MB (docs/BENCHMARKS.md). The fixed chunker
// keeps the seed's 4 MiB.
const (
	DefaultFastCDCMin = 160 << 10
	DefaultFastCDCAvg = 640 << 10
	DefaultFastCDCMax = 2560 << 10
	DefaultFixedSize  = 4 << 20
	// MaxChunkSize bounds every chunker so a chunk always fits one object of
	// a remote store (Ceph's default max write is 90 MB).
	MaxChunkSize = 16 << 20
)

// DefaultConfig is what `casfs init` writes without flags.
func DefaultConfig() Config {
	return Config{
		Format: 1, // local stores: FormatFor, at Init
		Hash:   HashBLAKE3,
		Chunker: ChunkerConfig{
			Algorithm: "fastcdc",
			Min:       DefaultFastCDCMin,
			Avg:       DefaultFastCDCAvg,
			Max:       DefaultFastCDCMax,
		},
		Compression: CompressionZstd,
	}
}

// ErrUnknownFormat is matched by errors for configs this build cannot use.
var ErrUnknownFormat = errors.New("unknown store format")

// Validate checks that this build can use c, with an error that says what is
// wrong. Configs that are read back from a store go through it before use.
func (c Config) Validate() error {
	if c.Format < 1 || c.Format > FormatVersion {
		return fmt.Errorf("%w: format version %d (this casfs reads versions 1 to %d; a newer casfs may read it)",
			ErrUnknownFormat, c.Format, FormatVersion)
	}
	if c.ID == "" {
		return fmt.Errorf("%w: config has no store id", ErrUnknownFormat)
	}
	switch c.Layout {
	case "", LayoutFiles:
	case LayoutPacks:
		if c.Format < 2 {
			return fmt.Errorf("%w: layout %q needs format 2, config says %d", ErrUnknownFormat, c.Layout, c.Format)
		}
	default:
		return fmt.Errorf("%w: layout %q (known: %s, %s)", ErrUnknownFormat, c.Layout, LayoutFiles, LayoutPacks)
	}
	if !c.Hash.Valid() {
		return fmt.Errorf("%w: hash %q (known: %s, %s)", ErrUnknownFormat, c.Hash, HashBLAKE3, HashSHA256)
	}
	switch c.Compression {
	case CompressionZstd, CompressionNone:
	default:
		return fmt.Errorf("%w: compression %q (known: zstd, none)", ErrUnknownFormat, c.Compression)
	}
	ch := c.Chunker
	switch ch.Algorithm {
	case "fastcdc":
		if ch.Min < 64 || ch.Min > ch.Avg || ch.Avg > ch.Max || ch.Max > MaxChunkSize {
			return fmt.Errorf("fastcdc chunk sizes min=%d avg=%d max=%d: need 64 <= min <= avg <= max <= %d",
				ch.Min, ch.Avg, ch.Max, MaxChunkSize)
		}
	case "fixed":
		if ch.Size < 64 || ch.Size > MaxChunkSize {
			return fmt.Errorf("fixed chunk size %d: need 64 <= size <= %d", ch.Size, MaxChunkSize)
		}
	default:
		return fmt.Errorf("%w: chunker %q (known: fastcdc, fixed)", ErrUnknownFormat, ch.Algorithm)
	}
	return nil
}

// MarshalConfig encodes c for storage.
func MarshalConfig(c Config) ([]byte, error) { return json.MarshalIndent(c, "", "  ") }

// UnmarshalConfig decodes and validates a stored config.
func UnmarshalConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: config is not valid JSON: %v", ErrUnknownFormat, err)
	}
	return c, c.Validate()
}
