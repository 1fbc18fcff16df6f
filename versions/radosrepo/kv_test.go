//go:build ceph

package radosrepo

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sync"
	"testing"

	librados "github.com/ceph/go-ceph/rados"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/rados"
	"github.com/casfs/casfs/versions"
	"github.com/casfs/casfs/versions/versionstest"
)

// testLocation returns a fresh POOL/NAMESPACE location on the test cluster
// that integration/ceph/start-cluster.sh describes in its env file, and the
// options to reach it; the namespace's objects are removed when t ends.
// Without a cluster the test is skipped, or fails under
// CASFS_REQUIRE_EXTERNAL (CI must not pass by skipping).
func testLocation(t testing.TB) (string, versions.CephOptions) {
	t.Helper()
	conf, pool := os.Getenv("CEPH_CONF"), os.Getenv("CASFS_CEPH_POOL")
	if conf == "" || pool == "" {
		const msg = "no Ceph cluster configured (set CEPH_CONF and CASFS_CEPH_POOL, e.g. `. DIR/env` after integration/ceph/start-cluster.sh DIR)"
		if os.Getenv("CASFS_REQUIRE_EXTERNAL") != "" {
			t.Fatal("Ceph tests required (CASFS_REQUIRE_EXTERNAL is set) but " + msg)
		}
		t.Skip(msg)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	ns := fmt.Sprintf("casfs-test-%x", b)
	o := versions.CephOptions{ConfFile: conf, User: os.Getenv("CASFS_CEPH_USER")}
	loc := pool + "/" + ns
	t.Cleanup(func() { purge(t, loc, o) })
	return loc, o
}

// purge removes every object of the store at loc.
func purge(t testing.TB, loc string, o versions.CephOptions) {
	ro, err := ParseLocation(loc, o)
	if err == nil {
		err = rados.Purge(context.Background(), ro)
	}
	if err != nil {
		t.Error(err)
	}
}

// newCatalog makes an empty catalog object in a fresh namespace.
func newCatalog(t testing.TB, o versions.KVOptions) (*versions.KVCatalog, *rados.Conn) {
	t.Helper()
	loc, co := testLocation(t)
	ro, err := ParseLocation(loc, co)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rados.Connect(context.Background(), ro)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WithIOContext(context.Background(), c.Namespace(), func(io *librados.IOContext) error {
		return io.Create(catalogObject, librados.CreateExclusive)
	}); err != nil {
		t.Fatal(err)
	}
	cat, err := versions.NewKVCatalog(context.Background(), newOmapKV(c), o)
	if err != nil {
		t.Fatal(err)
	}
	return cat, c
}

// TestCatalogConformance runs the catalog suite that the bolt catalog
// passes against the catalog in RADOS omap.
func TestCatalogConformance(t *testing.T) {
	testLocation(t) // one skip or failure, not one per subtest
	versionstest.Run(t, func(t *testing.T) versions.Catalog {
		cat, _ := newCatalog(t, versions.KVOptions{})
		return cat
	})
}

// TestCatalogConcurrentMachines has two connections (two machines) change
// one directory at once: creates, renames into a shared directory, commits
// to one shared file. Every transaction conflicts with the other machine's
// often, and the version guard makes each run again on fresh reads: no
// entry is lost, every commit is one version, and the catalog stays
// consistent.
func TestCatalogConcurrentMachines(t *testing.T) {
	ctx := context.Background()
	a, c := newCatalog(t, versions.KVOptions{})
	kvB := newOmapKV(connectAgain(t, c))
	b, err := versions.NewKVCatalog(ctx, kvB, versions.KVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := a.Create(ctx, versions.RootIno, "shared", versions.Attr{Mode: versions.ModeDir | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	file, err := a.Create(ctx, versions.RootIno, "file", versions.Attr{Mode: versions.ModeRegular | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	const perWorker = 15
	var wg sync.WaitGroup
	for m, cat := range []*versions.KVCatalog{a, b} {
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					name := fmt.Sprintf("m%d-w%d-%d", m, w, i)
					if _, err := cat.Create(ctx, versions.RootIno, name, versions.Attr{Mode: versions.ModeRegular | 0o644}); err != nil {
						t.Errorf("create %s: %v", name, err)
						return
					}
					if err := cat.Rename(ctx, versions.RootIno, name, shared.Ino, name, 0); err != nil {
						t.Errorf("rename %s: %v", name, err)
						return
					}
					rec := chunkstore.HashBLAKE3.Sum([]byte(name))
					if _, err := cat.Commit(ctx, file.Ino, versions.Version{Recipe: rec, Size: int64(i)}); err != nil {
						t.Errorf("commit %s: %v", name, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, cat := range []*versions.KVCatalog{a, b} {
		ents, err := cat.ReadDir(ctx, shared.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 2*3*perWorker {
			t.Errorf("shared directory has %d entries, want %d", len(ents), 2*3*perWorker)
		}
		root, err := cat.ReadDir(ctx, versions.RootIno)
		if err != nil {
			t.Fatal(err)
		}
		if len(root) != 2 {
			t.Errorf("root has %d entries, want 2 (shared, file): %v", len(root), root)
		}
		vs, err := cat.Versions(ctx, file.Ino)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2*3*perWorker {
			t.Errorf("file has %d versions, want %d (one per commit)", len(vs), 2*3*perWorker)
		}
		for i := 1; i < len(vs); i++ {
			if vs[i].ID.Compare(vs[i-1].ID) <= 0 {
				t.Errorf("versions out of order: %v after %v", vs[i].ID, vs[i-1].ID)
			}
		}
	}
	if err := a.Check(ctx); err != nil {
		t.Errorf("catalog inconsistent:\n%v", err)
	}
	t.Logf("machine b ran %d transactions again after a conflict", kvB.conflicts.Load())
	if kvB.conflicts.Load() == 0 {
		t.Error("no transaction conflicted: the test did not race the two machines")
	}
}

// connectAgain opens a second connection to c's store, as another machine
// would.
func connectAgain(t testing.TB, c *rados.Conn) *rados.Conn {
	t.Helper()
	c2, err := rados.Connect(context.Background(), c.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close)
	return c2
}
