package versions_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/versions"
	"github.com/casfs/casfs/versions/versionstest"
)

func openBolt(t testing.TB, path string, opts versions.BoltOptions) *versions.KVCatalog {
	t.Helper()
	c, err := versions.OpenBolt(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestBolt(t *testing.T) {
	t.Run("clock=real", func(t *testing.T) {
		versionstest.Run(t, func(t *testing.T) versions.Catalog {
			return openBolt(t, filepath.Join(t.TempDir(), "catalog.db"), versions.BoltOptions{})
		})
	})
	// A clock that never moves: every version ID must still be new.
	frozen := time.Date(2026, 11, 22, 1, 47, 3, 0, time.UTC)
	t.Run("clock=frozen", func(t *testing.T) {
		versionstest.Run(t, func(t *testing.T) versions.Catalog {
			c := openBolt(t, filepath.Join(t.TempDir(), "catalog.db"), versions.BoltOptions{
				Now: func() time.Time { return frozen },
			})
			return c
		})
	})
}

func recipeID(n byte) chunkstore.ID { return chunkstore.ID{0: n, 31: 1} }

func TestBoltReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	opts := versions.BoltOptions{Now: func() time.Time { return now }}
	c, err := versions.OpenBolt(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d, err := c.Create(ctx, versions.RootIno, "d", versions.Attr{Mode: versions.ModeDir | 0o750, Uid: 5, Gid: 6})
	must(err)
	old := time.Date(1600, 1, 1, 0, 0, 0, 999, time.UTC)
	f, err := c.Create(ctx, d.Ino, "f", versions.Attr{Mode: versions.ModeRegular | 0o600, Mtime: old})
	must(err)
	l, err := c.Create(ctx, d.Ino, "l", versions.Attr{Mode: versions.ModeSymlink | 0o777, Target: "f"})
	must(err)
	v1, err := c.Commit(ctx, f.Ino, versions.Version{Recipe: recipeID(1), Size: 10, Mtime: old})
	must(err)
	gone, err := c.Create(ctx, d.Ino, "gone", versions.Attr{Mode: versions.ModeRegular | 0o600})
	must(err)
	v2, err := c.Commit(ctx, gone.Ino, versions.Version{Recipe: recipeID(2), Size: 20})
	must(err)
	must(c.Remove(ctx, d.Ino, "gone", false))
	must(c.SetXattr(ctx, f.Ino, "user.k", []byte("v"), 0))
	must(c.Close())
	must(c.Close()) // twice is fine

	c = openBolt(t, path, opts)
	if got, err := c.Lookup(ctx, versions.RootIno, "d"); err != nil || got.Ino != d.Ino || got.Mode != d.Mode || got.Uid != 5 || got.Nlink != 2 {
		t.Errorf("d after reopen: %+v, %v", got, err)
	}
	if root, _ := c.GetAttr(ctx, versions.RootIno); root.Nlink != 3 {
		t.Errorf("root after reopen: %+v", root)
	}
	got, err := c.Lookup(ctx, d.Ino, "f")
	if err != nil || got.Head != v1.ID || got.Recipe != recipeID(1) || got.Size != 10 || !got.Mtime.Equal(old) ||
		!got.Ctime.Equal(now) || !got.Atime.Equal(f.Atime) {
		t.Errorf("f after reopen: %+v, %v", got, err)
	}
	if got, err := c.GetAttr(ctx, l.Ino); err != nil || got.Target != "f" || got.Size != 1 {
		t.Errorf("l after reopen: %+v, %v", got, err)
	}
	if vs, err := c.Versions(ctx, f.Ino); err != nil || len(vs) != 1 || vs[0].ID != v1.ID || !vs[0].Mtime.Equal(old) {
		t.Errorf("versions after reopen: %+v, %v", vs, err)
	}
	if ds, err := c.Deleted(ctx, d.Ino); err != nil || len(ds) != 1 || ds[0].Ino != gone.Ino || !ds[0].Deleted.Equal(now) {
		t.Errorf("deleted after reopen: %+v, %v", ds, err)
	}
	if v, err := c.GetXattr(ctx, f.Ino, "user.k"); err != nil || string(v) != "v" {
		t.Errorf("xattr after reopen: %q, %v", v, err)
	}
	// Counters survive: no inode number or version ID comes back, even
	// with the clock standing still.
	n, err := c.Create(ctx, d.Ino, "n", versions.Attr{Mode: versions.ModeRegular | 0o600})
	must(err)
	if n.Ino <= gone.Ino {
		t.Errorf("inode after reopen %d, want > %d", n.Ino, gone.Ino)
	}
	v3, err := c.Commit(ctx, n.Ino, versions.Version{Recipe: recipeID(3)})
	must(err)
	if v3.ID.Compare(v2.ID) <= 0 {
		t.Errorf("version after reopen %v, want after %v", v3.ID, v2.ID)
	}
}

func TestBoltClockBackwards(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	c := openBolt(t, filepath.Join(t.TempDir(), "catalog.db"), versions.BoltOptions{
		Now: func() time.Time { now = now.Add(-time.Second); return now },
	})
	f, err := c.Create(ctx, versions.RootIno, "f", versions.Attr{Mode: versions.ModeRegular | 0o600})
	if err != nil {
		t.Fatal(err)
	}
	var last versions.VersionID
	for i := 0; i < 5; i++ {
		v, err := c.Commit(ctx, f.Ino, versions.Version{Recipe: recipeID(byte(i + 1))})
		if err != nil {
			t.Fatal(err)
		}
		if v.ID.Compare(last) <= 0 {
			t.Fatalf("id %v not after %v", v.ID, last)
		}
		last = v.ID
	}
}

func TestBoltReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	if _, err := versions.OpenBolt(path, versions.BoltOptions{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing database succeeded")
	}
	c, err := versions.OpenBolt(path, versions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Create(ctx, versions.RootIno, "f", versions.Attr{Mode: versions.ModeRegular | 0o600})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	ro := openBolt(t, path, versions.BoltOptions{ReadOnly: true})
	if a, err := ro.Lookup(ctx, versions.RootIno, "f"); err != nil || a.Ino != f.Ino {
		t.Errorf("read-only lookup: %+v, %v", a, err)
	}
	_, err = ro.Create(ctx, versions.RootIno, "g", versions.Attr{Mode: versions.ModeRegular | 0o600})
	if !errors.Is(err, versions.ErrReadOnly) {
		t.Errorf("create on read-only: %v", err)
	}
	if err := ro.Remove(ctx, versions.RootIno, "f", false); !errors.Is(err, versions.ErrReadOnly) {
		t.Errorf("remove on read-only: %v", err)
	}
	// Two readers share the database.
	openBolt(t, path, versions.BoltOptions{ReadOnly: true})
}

func TestBoltInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	openBolt(t, path, versions.BoltOptions{})
	start := time.Now()
	_, err := versions.OpenBolt(path, versions.BoltOptions{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, versions.ErrInUse) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second open took %v", d)
	}
}

func TestBoltSchema(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema []byte
		want   string
	}{
		{"newer", binary.BigEndian.AppendUint32(nil, 99), "newer"},
		{"older", binary.BigEndian.AppendUint32(nil, 0), "unknown catalog schema"},
		{"garbage", []byte("x"), "not a casfs catalog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.db")
			c, err := versions.OpenBolt(path, versions.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("schema"), tc.schema)
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			for _, ro := range []bool{false, true} {
				_, err = versions.OpenBolt(path, versions.BoltOptions{ReadOnly: ro})
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("open (read-only %v) with schema %x: %v, want %q", ro, tc.schema, err, tc.want)
				}
			}
		})
	}
	// Not a catalog at all: a bolt file without the meta bucket, opened
	// read-only (a writable open would initialize it).
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := versions.OpenBolt(path, versions.BoltOptions{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "not a casfs catalog") {
		t.Errorf("read-only open of an empty bolt file: %v", err)
	}
}

func TestBoltErrorsNameTheEntry(t *testing.T) {
	ctx := context.Background()
	c := openBolt(t, filepath.Join(t.TempDir(), "catalog.db"), versions.BoltOptions{})
	_, err := c.Lookup(ctx, versions.RootIno, "missing-name")
	if !errors.Is(err, versions.ErrNotExist) || !strings.Contains(err.Error(), `"missing-name"`) {
		t.Errorf("lookup error %q", err)
	}
	_, err = c.Commit(ctx, 4242, versions.Version{Recipe: recipeID(1)})
	if !errors.Is(err, versions.ErrNotExist) || !strings.Contains(err.Error(), "4242") {
		t.Errorf("commit error %q", err)
	}
}

// benchDir makes a catalog with a directory of n files, in one transaction
// (a commit per create would spend the benchmark's setup on fsync).
func benchDir(b *testing.B, n int) (*versions.KVCatalog, versions.Ino) {
	c := openBolt(b, filepath.Join(b.TempDir(), "catalog.db"), versions.BoltOptions{})
	dir, err := versions.BoltBulkCreate(c, n)
	if err != nil {
		b.Fatal(err)
	}
	return c, dir
}

func BenchmarkLookup(b *testing.B) {
	const n = 20000
	c, dir := benchDir(b, n)
	ctx := context.Background()
	names := make([]string, 1024)
	for i := range names {
		names[i] = fmt.Sprintf("file-%06d", (i*7919)%n)
	}
	i := 0
	for b.Loop() {
		if _, err := c.Lookup(ctx, dir, names[i%len(names)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetAttr(b *testing.B) {
	const n = 20000
	c, dir := benchDir(b, n)
	ctx := context.Background()
	ents, err := c.ReadDir(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := c.GetAttr(ctx, ents[(i*7919)%n].Ino); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkReadDir(b *testing.B) {
	const n = 20000
	c, dir := benchDir(b, n)
	ctx := context.Background()
	for b.Loop() {
		ents, err := c.ReadDir(ctx, dir)
		if err != nil || len(ents) != n {
			b.Fatal(len(ents), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}

func BenchmarkCreate(b *testing.B) {
	c := openBolt(b, filepath.Join(b.TempDir(), "catalog.db"), versions.BoltOptions{})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := c.Create(ctx, versions.RootIno, fmt.Sprintf("f%d", i), versions.Attr{Mode: versions.ModeRegular | 0o644}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestBoltSchema1 opens a catalog written by a casfs of schema 1, whose
// inode records (format 1) and version values have no holes field: a
// read-only open reads it as it is, holes 0, and leaves it at schema 1; the
// first writable open raises it to 2, after which old and new records are
// read side by side. A version whose holes do not fit its size is refused.
func TestBoltSchema1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := versions.OpenBolt(path, versions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Create(ctx, versions.RootIno, "f", versions.Attr{Mode: versions.ModeRegular | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	rid := chunkstore.HashBLAKE3.Sum([]byte("recipe"))
	for _, v := range []versions.Version{{Recipe: rid, Size: 10, Holes: 11}, {Recipe: rid, Size: 10, Holes: -1}} {
		if _, err := c.Commit(ctx, f.Ino, v); !errors.Is(err, versions.ErrInvalid) {
			t.Errorf("commit of size %d with holes %d: %v, want ErrInvalid", v.Size, v.Holes, err)
		}
	}
	if _, err := c.Commit(ctx, f.Ino, versions.Version{Recipe: rid, Size: 100, Holes: 40}); err != nil {
		t.Fatal(err)
	}
	if a, err := c.GetAttr(ctx, f.Ino); err != nil || a.Size != 100 || a.Holes != 40 {
		t.Fatalf("after commit: %+v %v", a, err)
	}
	c.Close()

	// Rewrite it as schema 1 wrote it: format 1 inode records end with the
	// recipe ID (byte 105) before any symlink target, versions after the
	// mtime (byte 52).
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 1)); err != nil {
			return err
		}
		inodes := tx.Bucket([]byte("inodes"))
		type kv struct{ k, v []byte }
		var recs []kv
		inodes.ForEach(func(k, v []byte) error {
			old := append([]byte{1}, v[1:105]...)
			recs = append(recs, kv{append([]byte{}, k...), append(old, v[113:]...)})
			return nil
		})
		vers := tx.Bucket([]byte("versions"))
		var vs []kv
		vers.ForEach(func(k, v []byte) error {
			vs = append(vs, kv{append([]byte{}, k...), append([]byte{}, v[:52]...)})
			return nil
		})
		for _, r := range recs {
			if err := inodes.Put(r.k, r.v); err != nil {
				return err
			}
		}
		for _, r := range vs {
			if err := vers.Put(r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// schema reads the catalog's schema straight from the database.
	schema := func() uint32 {
		t.Helper()
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var s uint32
		if err := db.View(func(tx *bolt.Tx) error {
			s = binary.BigEndian.Uint32(tx.Bucket([]byte("meta")).Get([]byte("schema")))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// check wants HEAD of size wantSize, and versions with these holes.
	check := func(c *versions.KVCatalog, wantSize int64, wantVersions ...int64) {
		t.Helper()
		a, err := c.GetAttr(ctx, f.Ino)
		if err != nil || a.Size != wantSize {
			t.Fatalf("GetAttr: %+v %v, want size %d", a, err, wantSize)
		}
		if want := wantVersions[len(wantVersions)-1]; a.Holes != want {
			t.Errorf("HEAD's holes %d, want %d", a.Holes, want)
		}
		vs, err := c.Versions(ctx, f.Ino)
		if err != nil || len(vs) != len(wantVersions) {
			t.Fatalf("versions: %+v %v", vs, err)
		}
		for i, v := range vs {
			if v.Holes != wantVersions[i] {
				t.Errorf("version %d: holes %d, want %d", i, v.Holes, wantVersions[i])
			}
		}
		if err := c.Check(ctx); err != nil {
			t.Errorf("check: %v", err)
		}
	}
	ro, err := versions.OpenBolt(path, versions.BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of schema 1: %v", err)
	}
	check(ro, 100, 0)
	ro.Close()
	if s := schema(); s != 1 {
		t.Errorf("a read-only open changed the schema to %d", s)
	}

	rw, err := versions.OpenBolt(path, versions.BoltOptions{})
	if err != nil {
		t.Fatalf("writable open of schema 1: %v", err)
	}
	check(rw, 100, 0)
	if _, err := rw.Commit(ctx, f.Ino, versions.Version{Recipe: rid, Size: 50, Holes: 7}); err != nil {
		t.Fatal(err)
	}
	check(rw, 50, 0, 7)
	rw.Close()
	if s := schema(); s != 2 {
		t.Errorf("schema %d after a writable open, want 2", s)
	}
}
