package versions_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
	"github.com/casfs/casfs/versions"
)

// Benchmarks of the whole data path on a local store, as `casfs put` and
// `casfs get` run it: chunking, hashing, compression, fsynced chunk files
// and the bolt catalog. Run:
//
//	go test -run x -bench . -benchtime 3x ./versions

const benchSize = 64 << 20

// openLocalBench makes a default store in b.TempDir and a file in it.
func openLocalBench(b *testing.B) (*versions.Repo, versions.Ino) {
	b.Helper()
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "store")
	if err := versions.Init(ctx, dir, chunkstore.DefaultConfig()); err != nil {
		b.Fatal(err)
	}
	r, err := versions.Open(ctx, dir, versions.OpenOptions{Owner: "benchmark"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	a, err := r.Catalog().Create(ctx, versions.RootIno, "bench", versions.Attr{Mode: versions.ModeRegular | 0o644})
	if err != nil {
		b.Fatal(err)
	}
	return r, a.Ino
}

func benchWrite(b *testing.B, r *versions.Repo, ino versions.Ino, data []byte) versions.Version {
	b.Helper()
	v, err := r.Write(context.Background(), ino, bytes.NewReader(data), time.Time{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkPut writes 64 MiB of new random data each time: every chunk is
// compressed (or found incompressible) and stored.
func BenchmarkPut(b *testing.B) {
	r, ino := openLocalBench(b)
	b.SetBytes(benchSize)
	seed := uint64(1000)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		seed++
		data := chunkstoretest.RandomBytes(seed, benchSize)
		b.StartTimer()
		benchWrite(b, r, ino, data)
	}
}

// BenchmarkPutDedup writes the same 64 MiB again: chunking and hashing
// only, every chunk is found in the store.
func BenchmarkPutDedup(b *testing.B) {
	r, ino := openLocalBench(b)
	data := chunkstoretest.RandomBytes(2000, benchSize)
	benchWrite(b, r, ino, data)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		benchWrite(b, r, ino, data)
	}
}

// BenchmarkPutDedupFile is BenchmarkPutDedup from a file, as `casfs put
// STORE PATH FILE` and a mount's commit read it: cut on several cores
// (chunker.Split) rather than as a stream.
func BenchmarkPutDedupFile(b *testing.B) {
	r, ino := openLocalBench(b)
	data := chunkstoretest.RandomBytes(2000, benchSize)
	f := fileOf(b, data)
	benchWrite(b, r, ino, data)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Write(context.Background(), ino, io.NewSectionReader(f, 0, benchSize), time.Time{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutSmall commits 4 KiB of new data each time, as a mount does
// for each small file closed: one chunk, its recipe, a Sync and a catalog
// transaction.
func BenchmarkPutSmall(b *testing.B) {
	r, ino := openLocalBench(b)
	data := chunkstoretest.RandomBytes(4000, 4<<10)
	b.SetBytes(int64(len(data)))
	var n uint64
	for b.Loop() {
		n++
		binary.LittleEndian.PutUint64(data, n)
		benchWrite(b, r, ino, data)
	}
}

// BenchmarkGet reads 64 MiB back: chunk files read, decoded and verified.
func BenchmarkGet(b *testing.B) {
	r, ino := openLocalBench(b)
	ctx := context.Background()
	v := benchWrite(b, r, ino, chunkstoretest.RandomBytes(3000, benchSize))
	b.SetBytes(benchSize)
	b.ResetTimer()
	for b.Loop() {
		rec, err := r.LoadRecipe(ctx, v.Recipe)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.CopyOut(ctx, rec, io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}
