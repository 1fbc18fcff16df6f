package versions_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunker"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
	"github.com/casfs/casfs/chunkstore/mem"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// Tests of the Repo engine over a mem store and a bolt catalog: content
// round trips, deduplication, fsck and stats. gc_test.go and crash_test.go
// use the helpers here.

const (
	kiB = 1 << 10
	miB = 1 << 20
)

// defaultConfig is what `casfs init` writes: FastCDC 256K/1M/4M, zstd.
func defaultConfig() chunkstore.Config {
	cfg := chunkstore.DefaultConfig()
	cfg.ID = "test"
	return cfg
}

// smallConfig cuts 4K/16K/64K chunks, so tests get many chunks out of
// little data.
func smallConfig() chunkstore.Config {
	cfg := defaultConfig()
	cfg.Chunker = chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: 4 * kiB, Avg: 16 * kiB, Max: 64 * kiB}
	return cfg
}

// testRepo is a Repo over Encoded(mem) and a bolt catalog in t.TempDir.
type testRepo struct {
	*versions.Repo
	t   testing.TB
	mem *mem.Store // the encoded bytes, for counting and damaging chunks
	cfg chunkstore.Config
}

type repoOptions struct {
	cfg chunkstore.Config
	// wrap decorates the plain-chunk store the Repo sees.
	wrap func(chunkstore.Store) chunkstore.Store
	// wrapCat decorates the catalog the Repo sees.
	wrapCat func(versions.Catalog) versions.Catalog
	// shared and cat, if set, are the chunk store and catalog to use
	// instead of new ones: Repos made with the same ones stand in for
	// several machines on one shared store.
	shared *mem.Shared
	cat    versions.Catalog
}

func newRepo(t testing.TB, o repoOptions) *testRepo {
	t.Helper()
	if o.cfg.ID == "" {
		o.cfg = defaultConfig()
	}
	m := mem.New()
	var backend chunkstore.Store = m
	if o.shared != nil {
		m, backend = o.shared.Store, o.shared
	}
	enc, err := chunkstore.NewEncoded(backend, o.cfg.Hash, o.cfg.Compression)
	if err != nil {
		t.Fatal(err)
	}
	if o.wrap != nil {
		enc = o.wrap(enc)
	}
	cat := o.cat
	if cat == nil {
		bolt, err := versions.OpenBolt(filepath.Join(t.TempDir(), "meta.db"), versions.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cat = bolt
	}
	if o.wrapCat != nil {
		cat = o.wrapCat(cat)
	}
	r := versions.New(o.cfg, enc, cat)
	t.Cleanup(func() { r.Close() })
	return &testRepo{Repo: r, t: t, mem: m, cfg: o.cfg}
}

// create makes the regular file p (and its directories).
func (r *testRepo) create(p string) versions.Attr {
	r.t.Helper()
	ctx := context.Background()
	dir, err := r.MkdirAll(ctx, path.Dir(p), 0o755, 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	a, err := r.Catalog().Create(ctx, dir.Ino, path.Base(p), versions.Attr{Mode: versions.ModeRegular | 0o644})
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// write commits data as a new version of ino.
func (r *testRepo) write(ino versions.Ino, data []byte) versions.Version {
	r.t.Helper()
	v, err := r.Write(context.Background(), ino, bytes.NewReader(data), time.Time{}, nil)
	if err != nil {
		r.t.Fatalf("Write %d bytes: %v", len(data), err)
	}
	if v.Size != int64(len(data)) || v.ID.IsZero() || v.Recipe.IsZero() {
		r.t.Fatalf("Write %d bytes returned %+v", len(data), v)
	}
	return v
}

// read returns the content of v, read with CopyOut.
func (r *testRepo) read(v versions.Version) ([]byte, error) {
	ctx := context.Background()
	rec, err := r.LoadRecipe(ctx, v.Recipe)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := r.CopyOut(ctx, rec, &buf, nil); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// mustRead is read, failing the test on error or on content other than want.
func (r *testRepo) mustRead(v versions.Version, want []byte) {
	r.t.Helper()
	got, err := r.read(v)
	if err != nil {
		r.t.Fatalf("reading version %s: %v", v.ID, err)
	}
	if !bytes.Equal(got, want) {
		r.t.Fatalf("version %s: read %d bytes differing from the %d written (first difference at %d)",
			v.ID, len(got), len(want), firstDiff(got, want))
	}
}

func (r *testRepo) recipe(v versions.Version) *recipe.Recipe {
	r.t.Helper()
	rec, err := r.LoadRecipe(context.Background(), v.Recipe)
	if err != nil {
		r.t.Fatal(err)
	}
	return rec
}

// stored is the set of chunk IDs in the store.
func (r *testRepo) stored() map[chunkstore.ID]bool {
	r.t.Helper()
	ids := map[chunkstore.ID]bool{}
	if err := r.mem.List(context.Background(), func(i chunkstore.Info) error {
		ids[i.ID] = true
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
	return ids
}

// live is the set of chunks the catalog's versions reference, worked out
// here rather than by gc, to check gc against.
func (r *testRepo) live() map[chunkstore.ID]bool {
	r.t.Helper()
	ids := map[chunkstore.ID]bool{}
	err := r.Catalog().Walk(context.Background(), func(_ versions.Ino, v versions.Version) error {
		ids[v.Recipe] = true
		rec, err := r.LoadRecipe(context.Background(), v.Recipe)
		if err != nil {
			return err
		}
		for _, e := range rec.Extents {
			ids[e.ID] = true
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return ids
}

// fsck returns the problems Fsck reports.
func (r *testRepo) fsck() []versions.Problem {
	r.t.Helper()
	var probs []versions.Problem
	st, err := r.Fsck(context.Background(), func(p versions.Problem) { probs = append(probs, p) }, nil)
	if err != nil {
		r.t.Fatalf("Fsck: %v", err)
	}
	if st.Problems != len(probs) {
		r.t.Errorf("Fsck counted %d problems, reported %d", st.Problems, len(probs))
	}
	return probs
}

// fsckClean fails the test if Fsck finds anything.
func (r *testRepo) fsckClean() {
	r.t.Helper()
	if probs := r.fsck(); len(probs) > 0 {
		for _, p := range probs {
			r.t.Errorf("fsck: %v", p)
		}
		r.t.FailNow()
	}
}

// gc runs GC and fails the test on error.
func (r *testRepo) gc() versions.GCStats {
	r.t.Helper()
	st, err := r.GC(context.Background(), versions.GCProgress{})
	if err != nil {
		r.t.Fatalf("GC: %v", err)
	}
	return st
}

// versionsOf lists ino's versions.
func (r *testRepo) versionsOf(ino versions.Ino) []versions.Version {
	r.t.Helper()
	vs, err := r.Catalog().Versions(context.Background(), ino)
	if err != nil {
		r.t.Fatal(err)
	}
	return vs
}

// damage replaces the stored (encoded) bytes of id with what f makes of
// them; f returning nil deletes the chunk.
func (r *testRepo) damage(id chunkstore.ID, f func([]byte) []byte) {
	r.t.Helper()
	ctx := context.Background()
	b, err := r.mem.Get(ctx, id)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.mem.Delete(ctx, id); err != nil {
		r.t.Fatal(err)
	}
	if b = f(b); b != nil {
		if err := r.mem.Put(ctx, id, b); err != nil {
			r.t.Fatal(err)
		}
	}
}

// flipLast flips the last byte: inside the payload, whatever the codec.
func flipLast(b []byte) []byte {
	b[len(b)-1] ^= 0x55
	return b
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func randomBytes(seed uint64, n int) []byte { return chunkstoretest.RandomBytes(seed, n) }

// fileOf writes data to a file in a temp dir and returns it open for
// reading, as a section: what Write cuts as a file (chunker.Split) rather
// than as a stream. The file is closed when the test ends.
func fileOf(tb testing.TB, data []byte) *io.SectionReader {
	tb.Helper()
	name := filepath.Join(tb.TempDir(), "data")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return io.NewSectionReader(f, 0, int64(len(data)))
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// countingStore counts the calls that reach the store below it, and which
// IDs were put.
type countingStore struct {
	chunkstore.Store
	mu   sync.Mutex
	puts []chunkstore.ID
	has  atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	c.mu.Lock()
	c.puts = append(c.puts, id)
	c.mu.Unlock()
	return c.Store.Put(ctx, id, data)
}

func (c *countingStore) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	c.has.Add(1)
	return c.Store.Has(ctx, id)
}

// takePuts returns the IDs put since the last call.
func (c *countingStore) takePuts() []chunkstore.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.puts
	c.puts = nil
	return p
}

// chunkCount cuts data as the repo would and counts all chunks and the
// all-zero ones.
func chunkCount(t *testing.T, cfg chunkstore.Config, data []byte) (all, zero int) {
	t.Helper()
	ch, err := chunker.New(cfg.Chunker, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		c, err := ch.Next()
		if err == io.EOF {
			return all, zero
		}
		if err != nil {
			t.Fatal(err)
		}
		all++
		if !slices.ContainsFunc(c.Data, func(b byte) bool { return b != 0 }) {
			zero++
		}
	}
}

func TestRoundTrip(t *testing.T) {
	fixed := defaultConfig()
	fixed.Chunker = chunkstore.ChunkerConfig{Algorithm: "fixed", Size: 1 * miB}
	fixed.Compression = chunkstore.CompressionNone
	configs := []struct {
		name string
		cfg  chunkstore.Config
	}{
		{"fastcdc+zstd", defaultConfig()},
		{"fixed+none", fixed},
	}
	zeros := func(n int) []byte { return make([]byte, n) }
	cases := []struct {
		name  string
		data  []byte
		holes bool // has all-zero chunks, which must become holes
	}{
		{"empty", nil, false},
		{"one byte", []byte{42}, false},
		{"one zero byte", []byte{0}, true},
		{"below min chunk", randomBytes(1, 100*kiB), false},
		{"several MiB", randomBytes(2, 5*miB+123), false},
		{"text", chunkstoretest.TextBytes(3, 3*miB), false},
		// A zero run must outlast a maximum chunk or two to hold a chunk of
		// nothing but zeros.
		{"zero runs", concat(randomBytes(4, miB), zeros(9*miB), randomBytes(5, miB+7), zeros(9*miB)), true},
		{"all zeros", zeros(9 * miB), true},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			r := newRepo(t, repoOptions{cfg: c.cfg})
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r.t = t
					a := r.create(fmt.Sprintf("/f%d", i))
					v := r.write(a.Ino, tc.data)
					rec := r.recipe(v)
					if rec.Size != int64(len(tc.data)) {
						t.Fatalf("recipe size %d, wrote %d", rec.Size, len(tc.data))
					}
					r.mustRead(v, tc.data)
					checkReadAt(t, r, rec, tc.data)
					checkMaterialize(t, r, rec, tc.data)

					all, zero := chunkCount(t, c.cfg, tc.data)
					if len(rec.Extents) != all-zero {
						t.Errorf("recipe has %d extents; content has %d chunks of which %d all zero", len(rec.Extents), all, zero)
					}
					if tc.holes {
						if zero == 0 {
							t.Fatalf("test data has no all-zero chunk")
						}
						if rec.StoredSize() >= rec.Size {
							t.Errorf("StoredSize %d, Size %d: zero chunks were stored", rec.StoredSize(), rec.Size)
						}
					} else if rec.StoredSize() != rec.Size {
						t.Errorf("StoredSize %d, Size %d", rec.StoredSize(), rec.Size)
					}
					a2, err := r.Catalog().GetAttr(context.Background(), a.Ino)
					if err != nil {
						t.Fatal(err)
					}
					if a2.Head != v.ID || a2.Recipe != v.Recipe || a2.Size != v.Size {
						t.Errorf("attr after Write %+v, version %+v", a2, v)
					}
				})
			}
			r.t = t
			r.fsckClean()
		})
	}
}

// checkReadAt reads rec with recipe.ReadAt in random slices, and around the
// end of the file, and compares with want.
func checkReadAt(t *testing.T, r *testRepo, rec *recipe.Recipe, want []byte) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(len(want)), 7))
	// Whole file in random-length pieces.
	var got []byte
	for off := int64(0); off < rec.Size; {
		p := make([]byte, 1+rng.IntN(3*miB))
		n, err := rec.ReadAt(ctx, p, off, r.Fetch)
		if err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d): %v", off, len(p), err)
		}
		if err == io.EOF != (off+int64(len(p)) >= rec.Size) {
			t.Fatalf("ReadAt(%d, %d) of %d bytes: err %v", off, len(p), rec.Size, err)
		}
		got = append(got, p[:n]...)
		off += int64(n)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadAt pieces: %d bytes, differ from the %d written at %d", len(got), len(want), firstDiff(got, want))
	}
	// Random reads, some running past the end.
	for range 20 {
		if rec.Size == 0 {
			break
		}
		off := rng.Int64N(rec.Size)
		p := make([]byte, rng.IntN(2*miB)+1)
		for i := range p {
			p[i] = 0xff // holes must be cleared, not left as they were
		}
		n, err := rec.ReadAt(ctx, p, off, r.Fetch)
		if err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d, %d): %v", off, len(p), err)
		}
		if end := min(off+int64(len(p)), rec.Size); int64(n) != end-off || !bytes.Equal(p[:n], want[off:end]) {
			t.Fatalf("ReadAt(%d, %d): %d bytes, want %d equal to the content", off, len(p), n, end-off)
		}
	}
	if n, err := rec.ReadAt(ctx, make([]byte, 10), rec.Size, r.Fetch); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at the end: %d, %v; want 0, EOF", n, err)
	}
}

// checkMaterialize writes rec into a file and compares.
func checkMaterialize(t *testing.T, r *testRepo, rec *recipe.Recipe, want []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.Materialize(context.Background(), rec, f); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Materialize: %d bytes, differ from the %d written at %d", len(got), len(want), firstDiff(got, want))
	}
}

// TestDedupSameContent: a second file with the same 8 MiB stores nothing:
// its data chunks and its recipe are all in the store already.
func TestDedupSameContent(t *testing.T) {
	cnt := &countingStore{}
	r := newRepo(t, repoOptions{wrap: func(s chunkstore.Store) chunkstore.Store { cnt.Store = s; return cnt }})
	data := randomBytes(10, 8*miB)
	v1 := r.write(r.create("/a").Ino, data)
	first := cnt.takePuts()
	before := r.mem.Len()
	if want := len(r.recipe(v1).Extents) + 1; len(first) != want || before != want {
		t.Fatalf("first write: %d puts, %d chunks stored; want %d (data chunks + recipe)", len(first), before, want)
	}

	v2 := r.write(r.create("/dir/b").Ino, data)
	if p := cnt.takePuts(); len(p) != 0 {
		t.Errorf("second write of the same content put %d chunks, want 0", len(p))
	}
	if n := r.mem.Len(); n != before {
		t.Errorf("store grew from %d to %d chunks", before, n)
	}
	if v1.Recipe != v2.Recipe {
		t.Errorf("same content, different recipes %s and %s", v1.Recipe.Str(), v2.Recipe.Str())
	}
	r.mustRead(v1, data)
	r.mustRead(v2, data)
}

// TestDedupInsertion: a few bytes inserted near the start of a 16 MiB file
// re-store only the chunk(s) around the insertion, thanks to content-defined
// chunking.
func TestDedupInsertion(t *testing.T) {
	cnt := &countingStore{}
	r := newRepo(t, repoOptions{wrap: func(s chunkstore.Store) chunkstore.Store { cnt.Store = s; return cnt }})
	data := randomBytes(11, 16*miB)
	a := r.create("/big")
	v1 := r.write(a.Ino, data)
	cnt.takePuts()
	rec1 := r.recipe(v1)
	if len(rec1.Extents) < 8 {
		t.Fatalf("16 MiB cut into %d chunks; the test needs many", len(rec1.Extents))
	}

	edited := concat(data[:1000], []byte("inserted!"), data[1000:])
	v2 := r.write(a.Ino, edited)
	puts := cnt.takePuts()
	rec2 := r.recipe(v2)
	old := map[chunkstore.ID]bool{}
	for _, e := range rec1.Extents {
		old[e.ID] = true
	}
	var fresh []chunkstore.ID
	for _, e := range rec2.Extents {
		if !old[e.ID] {
			fresh = append(fresh, e.ID)
		}
	}
	t.Logf("%d chunks; the insertion put %d (%d new data chunks + recipe)", len(rec2.Extents), len(puts), len(fresh))
	if len(fresh) < 1 || len(fresh) > 2 {
		t.Errorf("the insertion changed %d of %d chunks, want 1 or 2", len(fresh), len(rec2.Extents))
	}
	if !slices.Contains(puts, v2.Recipe) || len(puts) != len(fresh)+1 {
		t.Errorf("the insertion put %d chunks, want the %d new ones and the recipe", len(puts), len(fresh))
	}
	r.mustRead(v1, data)
	r.mustRead(v2, edited)
}

// TestWriteRepeatedContent: content repeating itself stores the chunk once.
func TestWriteRepeatedContent(t *testing.T) {
	cfg := defaultConfig()
	cfg.Chunker = chunkstore.ChunkerConfig{Algorithm: "fixed", Size: 64 * kiB}
	r := newRepo(t, repoOptions{cfg: cfg})
	block := randomBytes(12, 64*kiB)
	data := bytes.Repeat(block, 20)
	v := r.write(r.create("/rep").Ino, data)
	if n := r.mem.Len(); n != 2 {
		t.Errorf("20 copies of one chunk stored %d chunks, want 2 (the chunk and the recipe)", n)
	}
	r.mustRead(v, data)
}

// TestWriteFileSameAsStream: a file is cut on several cores
// (chunker.Split), a stream by one chunker; both must give the same recipe,
// or putting a file and piping it would not deduplicate. The file spans
// several of Split's blocks, with a run of zeros (a hole) across a block
// boundary and data that cuts only at max.
func TestWriteFileSameAsStream(t *testing.T) {
	r := newRepo(t, repoOptions{cfg: smallConfig()})
	data := randomBytes(30, 50*miB+12345)
	clear(data[15*miB : 18*miB])
	copy(data[33*miB:], bytes.Repeat([]byte{7}, 2*miB))
	ctx := context.Background()
	vf, err := r.Write(ctx, r.create("/file").Ino, fileOf(t, data), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A bytes.Reader hidden behind io.Reader is a stream.
	vs, err := r.Write(ctx, r.create("/stream").Ino, struct{ io.Reader }{bytes.NewReader(data)}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rf, rs := r.recipe(vf), r.recipe(vs)
	if vf.Recipe != vs.Recipe {
		t.Fatalf("file and stream of the same bytes: recipes of %d and %d extents differ", len(rf.Extents), len(rs.Extents))
	}
	if len(rf.Extents) < 100 || rf.Holes() < 2*miB {
		t.Fatalf("%d extents, %d bytes of holes: the test needs many chunks and a hole", len(rf.Extents), rf.Holes())
	}
	r.mustRead(vf, data)
}

// TestWritePath: WritePath makes the file and its directories only once
// the data is stored, so a failing source leaves nothing behind; it adds
// a version to a file that exists, and refuses directories before reading.
func TestWritePath(t *testing.T) {
	r := newRepo(t, repoOptions{cfg: smallConfig()})
	ctx := context.Background()
	failing := io.MultiReader(bytes.NewReader(randomBytes(40, 300*kiB)), iotest.ErrReader(errors.New("boom")))
	if _, err := r.WritePath(ctx, "new/dir/f", versions.Attr{Mode: 0o600}, 0o755, failing, time.Time{}, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("WritePath of a failing source: %v", err)
	}
	if _, err := r.Resolve(ctx, "new"); !errors.Is(err, versions.ErrNotExist) {
		t.Fatalf("after a failed WritePath, new: %v; want it not to exist", err)
	}
	data := randomBytes(41, 200*kiB)
	v1, err := r.WritePath(ctx, "new/dir/f", versions.Attr{Mode: 0o600, Uid: 7}, 0o750, bytes.NewReader(data), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := r.mustResolve("new/dir/f"); a.Mode != versions.ModeRegular|0o600 || a.Uid != 7 || a.Size != int64(len(data)) {
		t.Errorf("made %+v", a)
	}
	if a := r.mustResolve("new/dir"); !a.IsDir() || a.Mode&0o777 != 0o750 {
		t.Errorf("directory made %+v", a)
	}
	v2, err := r.WritePath(ctx, "new/dir/f", versions.Attr{Mode: 0o644}, 0o755, bytes.NewReader(data[:100]), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vs, _ := r.Catalog().Versions(ctx, r.mustResolve("new/dir/f").Ino); len(vs) != 2 {
		t.Errorf("%d versions, want 2", len(vs))
	}
	r.mustRead(v1, data)
	r.mustRead(v2, data[:100])
	read := false
	src := readerFunc(func([]byte) (int, error) { read = true; return 0, io.EOF })
	if _, err := r.WritePath(ctx, "new/dir", versions.Attr{}, 0o755, src, time.Time{}, nil); !errors.Is(err, versions.ErrIsDir) || read {
		t.Errorf("WritePath onto a directory: %v (source read: %v)", err, read)
	}
	if _, err := r.WritePath(ctx, "new/dir/f/g", versions.Attr{}, 0o755, src, time.Time{}, nil); !errors.Is(err, versions.ErrNotDir) || read {
		t.Errorf("WritePath under a file: %v (source read: %v)", err, read)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// fsckFixture is a repo with a few files, the target file's HEAD being the
// one damage is done to.
type fsckFixture struct {
	r       *testRepo
	content map[versions.VersionID][]byte
	target  versions.Version
	ino     versions.Ino
	others  []versions.Version
}

func newFsckFixture(t *testing.T) *fsckFixture {
	r := newRepo(t, repoOptions{cfg: smallConfig()})
	f := &fsckFixture{r: r, content: map[versions.VersionID][]byte{}}
	add := func(p string, seeds ...uint64) versions.Version {
		a := r.create(p)
		var v versions.Version
		for _, s := range seeds {
			data := randomBytes(s, 100*kiB+int(s))
			v = r.write(a.Ino, data)
			f.content[v.ID] = data
		}
		return v
	}
	f.others = append(f.others, add("/docs/a", 20, 21))
	f.target = add("/docs/b", 22)
	f.ino = r.mustResolve("/docs/b").Ino
	f.others = append(f.others, add("/c", 23))
	r.fsckClean()
	return f
}

func TestFsck(t *testing.T) {
	cases := []struct {
		name    string
		recipe  bool // damage the recipe rather than a data chunk
		damage  func([]byte) []byte
		wantErr error
		wantMsg string
	}{
		{"corrupt chunk", false, flipLast, chunkstore.ErrCorrupt, "corrupt"},
		{"missing chunk", false, func([]byte) []byte { return nil }, chunkstore.ErrNotFound, "missing"},
		{"truncated chunk", false, func(b []byte) []byte { return b[:len(b)/2] }, chunkstore.ErrCorrupt, "corrupt"},
		{"corrupt recipe", true, flipLast, chunkstore.ErrCorrupt, "corrupt"},
		{"truncated recipe", true, func(b []byte) []byte { return b[:len(b)-5] }, chunkstore.ErrCorrupt, "corrupt"},
		{"missing recipe", true, func([]byte) []byte { return nil }, chunkstore.ErrNotFound, "not found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFsckFixture(t)
			r := f.r
			rec := r.recipe(f.target)
			id, off := f.target.Recipe, int64(-1)
			if !tc.recipe {
				e := rec.Extents[len(rec.Extents)/2]
				id, off = e.ID, e.Offset
			}
			r.damage(id, tc.damage)

			probs := r.fsck()
			if len(probs) != 1 {
				t.Fatalf("fsck reported %d problems, want 1: %v", len(probs), probs)
			}
			p := probs[0]
			if p.Path != "/docs/b" || p.Ino != f.ino || p.Version != f.target.ID || p.Chunk != id || p.Offset != off {
				t.Errorf("problem %+v, want path /docs/b, inode %d, version %s, chunk %s, offset %d",
					p, f.ino, f.target.ID, id.Str(), off)
			}
			if !errors.Is(p.Err, tc.wantErr) {
				t.Errorf("problem error %v, want one matching %v", p.Err, tc.wantErr)
			}
			msg := p.String()
			for _, want := range []string{"/docs/b", f.target.ID.String(), id.String(), tc.wantMsg} {
				if !strings.Contains(msg, want) {
					t.Errorf("problem %q does not mention %q", msg, want)
				}
			}
			if tc.recipe != strings.Contains(msg, "recipe") {
				t.Errorf("problem %q: says recipe = %v, want %v", msg, !tc.recipe, tc.recipe)
			}

			// Reading the damaged version fails with the same kind of error;
			// every other version still reads.
			if _, err := r.read(f.target); !errors.Is(err, tc.wantErr) {
				t.Errorf("reading the damaged version: %v, want %v", err, tc.wantErr)
			}
			for _, v := range f.others {
				r.mustRead(v, f.content[v.ID])
			}
			for _, v := range r.versionsOf(r.mustResolve("/docs/a").Ino) {
				r.mustRead(v, f.content[v.ID])
			}
		})
	}
}

func (r *testRepo) mustResolve(p string) versions.Attr {
	r.t.Helper()
	a, err := r.Resolve(context.Background(), p)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// TestFsckSharedChunk: a damaged chunk two files share is reported for each
// version that uses it, and read from the store only once.
func TestFsckSharedChunk(t *testing.T) {
	r := newRepo(t, repoOptions{cfg: smallConfig()})
	data := randomBytes(30, 300*kiB)
	va := r.write(r.create("/a").Ino, data)
	vb := r.write(r.create("/b").Ino, concat(data, []byte("tail")))
	id := r.recipe(va).Extents[0].ID
	r.damage(id, flipLast)
	probs := r.fsck()
	var got []string
	for _, p := range probs {
		if p.Chunk != id {
			t.Errorf("unexpected problem %v", p)
		}
		got = append(got, p.Path+"@"+p.Version.String())
	}
	slices.Sort(got)
	want := []string{"/a@" + va.ID.String(), "/b@" + vb.ID.String()}
	if !slices.Equal(got, want) {
		t.Errorf("problems for %v, want %v", got, want)
	}
}

// TestFsckDeletedFile: versions of a deleted file are checked too, and named
// as deleted.
func TestFsckDeletedFile(t *testing.T) {
	r := newRepo(t, repoOptions{cfg: smallConfig()})
	a := r.create("/gone")
	v := r.write(a.Ino, randomBytes(31, 50*kiB))
	if err := r.Catalog().Remove(context.Background(), versions.RootIno, "gone", false); err != nil {
		t.Fatal(err)
	}
	r.damage(r.recipe(v).Extents[0].ID, flipLast)
	probs := r.fsck()
	if len(probs) != 1 || !strings.HasPrefix(probs[0].Path, "/gone (deleted ") || probs[0].Version != v.ID {
		t.Fatalf("problems %v, want one for /gone (deleted ...) version %s", probs, v.ID)
	}
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	t.Run("empty", func(t *testing.T) {
		r := newRepo(t, repoOptions{})
		st, err := r.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st != (versions.Stats{}) || st.DedupRatio() != 1 || st.CompressionRatio() != 1 {
			t.Errorf("empty store: %+v, ratios %v %v", st, st.DedupRatio(), st.CompressionRatio())
		}
	})
	t.Run("two identical files", func(t *testing.T) {
		r := newRepo(t, repoOptions{})
		data := randomBytes(40, 8*miB)
		v := r.write(r.create("/a").Ino, data)
		r.write(r.create("/b").Ino, data)
		st, err := r.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		chunks := len(r.recipe(v).Extents) + 1 // one recipe: the two are the same
		want := versions.Stats{Files: 2, Versions: 2, Logical: 16 * miB, Unique: 8 * miB,
			Chunks: chunks, Stored: memBytes(t, r.mem)}
		if st != want {
			t.Errorf("stats %+v, want %+v", st, want)
		}
		if st.DedupRatio() != 2 {
			t.Errorf("dedup ratio %v, want 2", st.DedupRatio())
		}
		// Random data is stored raw, with a few bytes of framing per chunk.
		if c := st.CompressionRatio(); c > 1 || c < 0.999 {
			t.Errorf("compression ratio of random data %v, want just under 1", c)
		}
	})
	t.Run("versions holes and text", func(t *testing.T) {
		r := newRepo(t, repoOptions{})
		text := chunkstoretest.TextBytes(41, 4*miB)
		a := r.create("/log")
		r.write(a.Ino, text)
		r.write(a.Ino, concat(text, text[:miB])) // shares the first 4 MiB
		holes := concat(make([]byte, 8*miB), randomBytes(42, 256*kiB))
		r.write(r.create("/sparse").Ino, holes)
		st, err := r.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantLogical := int64(len(text) + len(text) + miB + len(holes))
		if st.Files != 2 || st.Versions != 3 || st.Logical != wantLogical {
			t.Errorf("stats %+v, want 2 files, 3 versions, %d logical bytes", st, wantLogical)
		}
		// Unique: the distinct chunks of all recipes, holes excluded.
		var unique int64
		seen := map[chunkstore.ID]bool{}
		err = r.Catalog().Walk(ctx, func(_ versions.Ino, v versions.Version) error {
			for _, e := range r.recipe(v).Extents {
				if !seen[e.ID] {
					seen[e.ID] = true
					unique += e.Size
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Unique != unique || st.Unique >= int64(len(text))+miB+int64(len(holes)) {
			t.Errorf("unique %d, want %d (less than the content without holes)", st.Unique, unique)
		}
		if st.Chunks != r.mem.Len() || st.Stored != memBytes(t, r.mem) {
			t.Errorf("chunks %d stored %d, store holds %d and %d", st.Chunks, st.Stored, r.mem.Len(), memBytes(t, r.mem))
		}
		if st.DedupRatio() < 2 {
			t.Errorf("dedup ratio %.2f, want > 2 (shared versions and an 8 MiB hole)", st.DedupRatio())
		}
		if st.CompressionRatio() < 2 {
			t.Errorf("compression ratio %.2f of mostly text, want > 2", st.CompressionRatio())
		}
	})
	t.Run("removed version counts until gc", func(t *testing.T) {
		r := newRepo(t, repoOptions{cfg: smallConfig()})
		a := r.create("/f")
		v1 := r.write(a.Ino, randomBytes(43, 200*kiB))
		r.write(a.Ino, randomBytes(44, 100*kiB))
		if err := r.Catalog().RemoveVersion(ctx, a.Ino, v1.ID); err != nil {
			t.Fatal(err)
		}
		st, err := r.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Versions != 1 || st.Logical != 100*kiB || st.Unique != 100*kiB || st.Chunks != r.mem.Len() {
			t.Errorf("after removing a version: %+v", st)
		}
		r.gc()
		st2, err := r.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st2.Chunks >= st.Chunks || st2.Chunks != len(r.live()) {
			t.Errorf("after gc: %d chunks (before %d, live %d)", st2.Chunks, st.Chunks, len(r.live()))
		}
	})
}

func memBytes(t *testing.T, m *mem.Store) int64 {
	var n int64
	if err := m.List(context.Background(), func(i chunkstore.Info) error { n += i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// keys returns the sorted short forms of a set's IDs, for messages.
func keys(s map[chunkstore.ID]bool) []string {
	out := make([]string, 0, len(s))
	for _, id := range slices.Collect(maps.Keys(s)) {
		out = append(out, id.Str())
	}
	slices.Sort(out)
	return out
}

// slowGets is a store whose Gets take a while and count themselves while
// they run.
type slowGets struct {
	chunkstore.Store
	running atomic.Int32
}

func (s *slowGets) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	s.running.Add(1)
	defer s.running.Add(-1)
	time.Sleep(20 * time.Millisecond)
	return s.Store.Get(ctx, id)
}

// TestCopyOutFailureLeavesNoFetchRunning: when the writer fails, CopyOut
// returns only after the chunks it was fetching ahead have arrived. A fetch
// still running would use the store after the caller (casfs get, say)
// closed it, which for a RADOS store is a crash in librados.
func TestCopyOutFailureLeavesNoFetchRunning(t *testing.T) {
	slow := &slowGets{}
	r := newRepo(t, repoOptions{cfg: smallConfig(), wrap: func(s chunkstore.Store) chunkstore.Store { slow.Store = s; return slow }})
	v := r.write(r.create("/f").Ino, randomBytes(12, 2*miB))
	rec := r.recipe(v)
	if len(rec.Extents) < 8 {
		t.Fatalf("2 MiB cut into %d chunks; the test needs more than the fetch window", len(rec.Extents))
	}
	boom := errors.New("disk full")
	err := r.CopyOut(context.Background(), rec, failingWriter{boom}, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("CopyOut to a failing writer: %v; want its error", err)
	}
	if n := slow.running.Load(); n != 0 {
		t.Errorf("CopyOut returned with %d fetches still running", n)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
