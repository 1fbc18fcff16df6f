package chunkstore_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
	"github.com/casfs/casfs/chunkstore/local"
)

// Benchmarks behind the choices in id.go (BLAKE3 by default) and encoded.go
// (zstd level). Run: go test -run x -bench . ./chunkstore

const benchChunk = 1 << 20

// benchData holds one chunk of each kind of input: random (incompressible,
// like media and archives), text (chunkstoretest's synthetic words, short
// matches: a hard case for zstd's fast levels) and gosrc (real text: Go's own
// net/http sources).
var benchData = map[string][]byte{
	"random": chunkstoretest.RandomBytes(1, benchChunk),
	"text":   chunkstoretest.TextBytes(1, benchChunk),
}

var benchKinds = []string{"random", "text", "gosrc"}

func init() {
	if src := goSource(); len(src) == benchChunk {
		benchData["gosrc"] = src
	}
}

// goSource returns benchChunk bytes of the Go distribution's net/http
// sources, or nil if they are not at hand.
func goSource() []byte {
	root := os.Getenv("GOROOT")
	if root == "" {
		root = runtime.GOROOT() //nolint:staticcheck // only a fallback for benchmark data
	}
	files, _ := filepath.Glob(filepath.Join(root, "src", "net", "http", "*.go"))
	var b []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil
		}
		b = append(b, data...)
		if len(b) >= benchChunk {
			return b[:benchChunk]
		}
	}
	return nil
}

// forKinds runs fn for each input kind that is available.
func forKinds(b *testing.B, kinds []string, fn func(b *testing.B, kind string, data []byte)) {
	for _, kind := range kinds {
		data, ok := benchData[kind]
		if !ok {
			continue
		}
		fn(b, kind, data)
	}
}

func BenchmarkHash(b *testing.B) {
	data := benchData["random"]
	for _, h := range []chunkstore.Hash{chunkstore.HashBLAKE3, chunkstore.HashSHA256} {
		b.Run(string(h), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				h.Sum(data)
			}
		})
	}
}

var benchLevels = []struct {
	name  string
	level zstd.EncoderLevel
}{
	{"fastest", zstd.SpeedFastest},
	{"default", zstd.SpeedDefault},
}

func BenchmarkZstdEncode(b *testing.B) {
	for _, lv := range benchLevels {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lv.level), zstd.WithEncoderCRC(false))
		if err != nil {
			b.Fatal(err)
		}
		forKinds(b, benchKinds, func(b *testing.B, kind string, data []byte) {
			b.Run(lv.name+"/"+kind, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				var out []byte
				for b.Loop() {
					out = enc.EncodeAll(data, out[:0])
				}
				b.ReportMetric(100*float64(len(out))/float64(len(data)), "%size")
			})
		})
		enc.Close()
	}
}

func BenchmarkZstdDecode(b *testing.B) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	forKinds(b, benchKinds, func(b *testing.B, kind string, data []byte) {
		comp := enc.EncodeAll(data, nil)
		b.Run(kind, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			out := make([]byte, 0, len(data))
			for b.Loop() {
				if out, err = dec.DecodeAll(comp, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// openBenchStore returns NewEncoded over a local store in a temp dir.
func openBenchStore(b *testing.B) chunkstore.Store {
	b.Helper()
	dir := b.TempDir()
	cfg := chunkstore.DefaultConfig()
	if err := local.Init(dir, cfg); err != nil {
		b.Fatal(err)
	}
	ls, err := local.Open(context.Background(), dir, local.Options{Owner: "benchmark"})
	if err != nil {
		b.Fatal(err)
	}
	s, err := chunkstore.NewEncoded(ls, cfg.Hash, cfg.Compression)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkEncodedLocalPut measures what a backup of new data costs per
// chunk: fingerprint, compress, write, and a share of the Sync that makes
// it durable (one per 64 chunks, as in a commit of 64 MiB). Each iteration
// stamps a counter into the chunk so that every Put is of a new chunk. The
// store is new, so most Puts also make a shard directory, as in a young
// store. The parallel variants keep Properties().Concurrency Puts in
// flight, as the writer pipeline does; sync-each syncs after every chunk,
// as a mount committing small files one by one does.
func BenchmarkEncodedLocalPut(b *testing.B) {
	for _, kind := range benchKinds {
		if _, ok := benchData[kind]; !ok {
			continue
		}
		for _, mode := range []string{"", "/parallel", "/sync-each"} {
			b.Run(kind+mode, func(b *testing.B) {
				s := openBenchStore(b)
				ctx := context.Background()
				var counter atomic.Uint64
				syncEvery := uint64(64)
				if mode == "/sync-each" {
					syncEvery = 1
				}
				b.SetBytes(benchChunk)
				put := func(data []byte) {
					n := counter.Add(1)
					binary.LittleEndian.PutUint64(data, n)
					if err := s.Put(ctx, chunkstore.HashBLAKE3.Sum(data), data); err != nil {
						b.Error(err)
					}
					if n%syncEvery == 0 {
						if err := s.Sync(ctx); err != nil {
							b.Error(err)
						}
					}
				}
				if mode != "/parallel" {
					data := append([]byte(nil), benchData[kind]...)
					for b.Loop() {
						put(data)
					}
					return
				}
				b.SetParallelism(max(1, s.Properties().Concurrency/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					data := append([]byte(nil), benchData[kind]...)
					for pb.Next() {
						put(data)
					}
				})
			})
		}
	}
}

// BenchmarkEncodedLocalGet measures reading a chunk back: read the file,
// decompress, verify the fingerprint. The chunks are in the page cache, so
// this is the CPU cost, not the disk's.
func BenchmarkEncodedLocalGet(b *testing.B) {
	forKinds(b, benchKinds, func(b *testing.B, kind string, _ []byte) {
		b.Run(kind, func(b *testing.B) {
			s := openBenchStore(b)
			ctx := context.Background()
			const n = 8
			ids := make([]chunkstore.ID, n)
			for i := range ids {
				data := append([]byte(nil), benchData[kind]...)
				binary.LittleEndian.PutUint64(data, uint64(i))
				ids[i] = chunkstore.HashBLAKE3.Sum(data)
				if err := s.Put(ctx, ids[i], data); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(benchChunk)
			i := 0
			for b.Loop() {
				if _, err := s.Get(ctx, ids[i%n]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
