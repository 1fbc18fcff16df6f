package versions

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/mem"
	"github.com/casfs/casfs/recipe"
)

func newIncRepo(t *testing.T) (*Repo, Ino) {
	t.Helper()
	cfg := chunkstore.DefaultConfig()
	cfg.ID = "inc"
	cfg.Chunker = chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}
	enc, err := chunkstore.NewEncoded(mem.New(), cfg.Hash, cfg.Compression)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := OpenBolt(filepath.Join(t.TempDir(), "meta.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := New(cfg, enc, cat)
	t.Cleanup(func() { r.Close() })
	a, err := cat.Create(context.Background(), RootIno, "f", Attr{Mode: ModeRegular | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	return r, a.Ino
}

// TestWriteFromMatchesWrite checks that an incremental commit after an
// edit gives the same recipe as chunking the whole file again.
func TestWriteFromMatchesWrite(t *testing.T) {
	ctx := context.Background()
	r, ino := newIncRepo(t)
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	clear(data[100<<10 : 180<<10]) // a run of zeros: holes
	_, rec, err := r.WriteFrom(ctx, ino, bytes.NewReader(data), int64(len(data)), nil, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	edits := []struct {
		name string
		edit func([]byte) ([]byte, int64) // new content, lowest changed offset
	}{
		{"append", func(b []byte) ([]byte, int64) { return append(b, bytes.Repeat([]byte("tail"), 5000)...), int64(len(b)) }},
		{"overwrite near the end", func(b []byte) ([]byte, int64) { copy(b[len(b)-3000:], "changed"); return b, int64(len(b) - 3000) }},
		{"overwrite in the middle", func(b []byte) ([]byte, int64) { copy(b[50<<10:], "middle"); return b, 50 << 10 }},
		{"write into the hole", func(b []byte) ([]byte, int64) { copy(b[150<<10:], "in the hole"); return b, 150 << 10 }},
		{"truncate", func(b []byte) ([]byte, int64) { return b[:200<<10], 200 << 10 }},
		{"rewrite from zero", func(b []byte) ([]byte, int64) { b[0] ^= 1; return b, 0 }},
	}
	for _, e := range edits {
		var off int64
		data, off = e.edit(data)
		prefix, base := Reusable(rec)
		if off < base {
			prefix, base = CutPrefix(prefix, off)
		}
		if base > int64(len(data)) {
			prefix, base = CutPrefix(prefix, int64(len(data)))
		}
		_, got, err := r.WriteFrom(ctx, ino, bytes.NewReader(data), int64(len(data)), prefix, base, time.Time{})
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		full, _, err := r.storeContent(ctx, bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !sameRecipe(got, full) {
			t.Fatalf("%s: incremental recipe (%d extents) differs from a full chunking (%d)", e.name, len(got.Extents), len(full.Extents))
		}
		var out bytes.Buffer
		if err := r.CopyOut(ctx, got, &out, nil); err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("%s: content differs (%v)", e.name, err)
		}
		rec = got
	}
}

func sameRecipe(a, b *recipe.Recipe) bool {
	if a.Size != b.Size || len(a.Extents) != len(b.Extents) {
		return false
	}
	for i := range a.Extents {
		if a.Extents[i] != b.Extents[i] {
			return false
		}
	}
	return true
}

// TestStoreAheadMatchesWrite stores the chunks of a file's first part while
// it is "still being written", in several rounds, then commits the whole
// file reusing them: the recipe is the one a whole Write makes, and what
// the rounds returned was stored, within what they were given.
func TestStoreAheadMatchesWrite(t *testing.T) {
	ctx := context.Background()
	r, ino := newIncRepo(t)
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 400<<10)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	clear(data[120<<10 : 200<<10]) // holes inside the part stored ahead

	var prefix []recipe.Extent
	var base int64
	var held []chunkstore.ID
	for _, written := range []int64{90 << 10, 250 << 10, 330 << 10} {
		exts, end, h, err := r.StoreAhead(ctx, bytes.NewReader(data[base:written]), base)
		held = append(held, h...)
		if err != nil {
			t.Fatal(err)
		}
		if end <= base || end >= written {
			t.Fatalf("StoreAhead of [%d, %d) ended at %d", base, written, end)
		}
		for _, e := range exts {
			if e.Offset < base || e.End() > end {
				t.Fatalf("extent %+v outside [%d, %d)", e, base, end)
			}
			if ok, err := r.Chunks().Has(ctx, e.ID); err != nil || !ok {
				t.Fatalf("extent %+v not stored: %v", e, err)
			}
		}
		prefix, base = append(prefix, exts...), end
	}
	_, rec, err := r.WriteFrom(ctx, ino, bytes.NewReader(data), int64(len(data)), prefix, base, time.Time{})
	r.Release(held)
	if err != nil {
		t.Fatal(err)
	}
	_, whole, err := r.WriteFrom(ctx, ino, bytes.NewReader(data), int64(len(data)), nil, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Extents, whole.Extents) || rec.Size != whole.Size {
		t.Fatalf("recipe after storing ahead differs from a whole write:\n%v\n%v", rec.Extents, whole.Extents)
	}
	var buf bytes.Buffer
	if err := r.CopyOut(ctx, rec, &buf, nil); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("content differs (%v)", err)
	}
}

// countingFile counts the bytes read from a file.
type countingFile struct {
	*os.File
	read atomic.Int64
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.File.ReadAt(p, off)
	c.read.Add(int64(n))
	return n, err
}

// TestWriteFromSparseFile commits a 1 TiB sparse file with a little data:
// chunking reads its data, not its holes, and the recipe still says what
// the file holds. Then a write into the big hole, committed incrementally
// and stored ahead, gives the recipe of chunking the whole file again.
func TestWriteFromSparseFile(t *testing.T) {
	ctx := context.Background()
	r, ino := newIncRepo(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 1 << 40
	if err := f.Truncate(size); err != nil {
		t.Fatalf("making a 1 TiB sparse file: %v", err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	put := func(off int64, n int) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32()) | 1
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 100<<10)
	put(200<<10, 8<<10) // after a short hole: chunked with the data around it
	put(64<<20, 50<<10)
	put(size-1, 1)
	cf := &countingFile{File: f}
	_, rec, err := r.WriteFrom(ctx, ino, cf, size, nil, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Size != size {
		t.Fatalf("recipe size %d, want %d", rec.Size, size)
	}
	if n := cf.read.Load(); n > 16<<20 {
		t.Fatalf("chunking read %d bytes of a file with 159 KiB of data", n)
	}
	check := func(rec *recipe.Recipe) {
		t.Helper()
		for _, off := range []int64{0, 100 << 10, 150 << 10, 200 << 10, 64<<20 - 10, 64 << 20, 1 << 30, size - 4096} {
			want := make([]byte, 4096)
			if _, err := f.ReadAt(want, off); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4096)
			if n, err := rec.ReadAt(ctx, got, off, r.Fetch); n != len(got) || (err != nil && err != io.EOF) {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("bytes at %d differ", off)
			}
		}
	}
	check(rec)

	// A write into the hole: an incremental commit from the cut point
	// before it matches chunking the whole file.
	put(1<<30, 30<<10)
	prefix, base := Reusable(rec)
	if base > 1<<30 {
		prefix, base = CutPrefix(prefix, 1<<30)
	}
	_, inc, err := r.WriteFrom(ctx, ino, cf, size, prefix, base, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, whole, err := r.WriteFrom(ctx, ino, f, size, nil, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameRecipe(inc, whole) {
		t.Fatalf("incremental recipe differs from a whole one:\n%v\n%v", inc.Extents, whole.Extents)
	}
	check(whole)

	// Storing ahead over the holes ends at a cut point too.
	exts, end, held, err := r.StoreAhead(ctx, io.NewSectionReader(f, 0, size), 0)
	defer r.Release(held)
	if err != nil {
		t.Fatal(err)
	}
	_, ahead, err := r.WriteFrom(ctx, ino, f, size, exts, end, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameRecipe(ahead, whole) {
		t.Fatalf("recipe after storing ahead differs from a whole one:\n%v\n%v", ahead.Extents, whole.Extents)
	}
	if n := cf.read.Load(); n > 64<<20 {
		t.Fatalf("all commits read %d bytes", n)
	}
}
