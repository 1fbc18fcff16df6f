package fs

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/mem"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// newNodeFS builds a filesystem over an in-memory chunk store and a bbolt
// catalog, with its node tree set up by go-fuse but no kernel: node methods
// are called directly.
func newNodeFS(t *testing.T) (*FS, *dirNode) {
	t.Helper()
	cfg := chunkstore.DefaultConfig()
	cfg.ID = "node-test"
	cfg.Chunker = chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: 1 << 10, Avg: 4 << 10, Max: 16 << 10}
	enc, err := chunkstore.NewEncoded(mem.New(), cfg.Hash, cfg.Compression)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := versions.OpenBolt(filepath.Join(t.TempDir(), "meta.db"), versions.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	repo := versions.New(cfg, enc, cat)
	t.Cleanup(func() { repo.Close() })
	f, err := New(repo, Options{StagingDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close) // before repo.Close: cleanups run last first
	root := f.Root()
	gofs.NewNodeFS(root, &gofs.Options{})
	return f, root.(*dirNode)
}

func TestNodeWriteCommitRead(t *testing.T) {
	ctx := context.Background()
	f, root := newNodeFS(t)
	var out fuse.EntryOut
	dir, errno := root.Mkdir(ctx, "d", 0o755, &out)
	if errno != 0 {
		t.Fatal(errno)
	}
	d := dir.Operations().(*dirNode)
	ch, fh, _, errno := d.Create(ctx, "f.txt", syscall.O_RDWR, 0o644, &out)
	if errno != 0 {
		t.Fatal(errno)
	}
	h := fh.(*handle)
	data := randBytes(50<<10, 7)
	if n, errno := h.Write(ctx, data, 0); errno != 0 || int(n) != len(data) {
		t.Fatalf("write: %d %v", n, errno)
	}
	if errno := h.Flush(ctx); errno != 0 {
		t.Fatal(errno)
	}
	fn := ch.Operations().(*fileNode)
	vs, err := f.cat.Versions(ctx, fn.ino)
	if err != nil || len(vs) != 1 || vs[0].Size != int64(len(data)) {
		t.Fatalf("after flush: %+v %v", vs, err)
	}
	// A second flush with no change commits nothing.
	h.Flush(ctx)
	if vs, _ := f.cat.Versions(ctx, fn.ino); len(vs) != 1 {
		t.Fatalf("unchanged flush made a version: %d", len(vs))
	}
	if errno := h.Release(ctx); errno != 0 {
		t.Fatal(errno)
	}
	if fn.st != nil {
		t.Fatal("staging file kept after the last writer released")
	}
	// Reads now go through HEAD's recipe, including one inside a chunk.
	rh, _, errno := fn.Open(ctx, syscall.O_RDONLY)
	if errno != 0 {
		t.Fatal(errno)
	}
	for _, r := range []struct{ off, n int }{{0, 100}, {5000, 10}, {len(data) - 7, 100}} {
		res, errno := rh.(*handle).Read(ctx, make([]byte, r.n), int64(r.off))
		if errno != 0 {
			t.Fatal(errno)
		}
		got, _ := res.Bytes(nil)
		want := data[r.off:min(r.off+r.n, len(data))]
		if string(got) != string(want) {
			t.Fatalf("read %d+%d: got %d bytes, wrong", r.off, r.n, len(got))
		}
	}
}

func TestNodeReservedAndReadOnly(t *testing.T) {
	ctx := context.Background()
	_, root := newNodeFS(t)
	var out fuse.EntryOut
	if _, errno := root.Mkdir(ctx, versionsName, 0o755, &out); errno != syscall.EEXIST {
		t.Fatalf("mkdir .versions: %v", errno)
	}
	hist, errno := root.Lookup(ctx, versionsName, &out)
	if errno != 0 {
		t.Fatal(errno)
	}
	h := hist.Operations().(*histDir)
	if _, errno := h.Mkdir(ctx, "x", 0o755, &out); errno != syscall.EROFS {
		t.Fatalf("mkdir in .versions: %v", errno)
	}
	if errno := root.Rename(ctx, "nothing", h, "x", 0); errno != syscall.EROFS {
		t.Fatalf("rename into .versions: %v", errno)
	}
	stream, errno := root.Readdir(ctx)
	if errno != 0 {
		t.Fatal(errno)
	}
	for stream.HasNext() {
		e, _ := stream.Next()
		if e.Name == versionsName {
			t.Fatal(".versions listed in the root")
		}
	}
}

func TestVersionName(t *testing.T) {
	id, _ := versions.ParseVersionID("2026-11-22T01-47-03.123456789Z")
	for in, want := range map[string]string{
		"report.txt":     "report.2026-11-22T01-47-03.123456789Z.txt",
		"archive.tar.gz": "archive.tar.2026-11-22T01-47-03.123456789Z.gz",
		"Makefile":       "Makefile.2026-11-22T01-47-03.123456789Z",
		".bashrc":        ".bashrc.2026-11-22T01-47-03.123456789Z",
	} {
		if got := versionName(in, id); got != want {
			t.Errorf("versionName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrnoTable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{fmt.Errorf("lookup x: %w", versions.ErrNotExist), syscall.ENOENT},
		{fmt.Errorf("rmdir: %w", versions.ErrNotEmpty), syscall.ENOTEMPTY},
		{&chunkstore.CorruptError{Reason: "bad"}, syscall.EIO},
		{fmt.Errorf("decode: %w", recipe.ErrInvalid), syscall.EIO},
		{fmt.Errorf("write: %w", syscall.ENOSPC), syscall.ENOSPC},
		{errors.New("something unknown"), syscall.EIO},
		{nil, 0},
	} {
		if got := toErrno(c.err, "test"); got != c.want {
			t.Errorf("toErrno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestNodeLateReleaseAfterTruncate pins an interleaving a kernel produces:
// the RELEASE of the previous writer arrives after the next open(O_TRUNC)
// and before that handle writes. It must not commit the truncation as an
// empty version.
func TestNodeLateReleaseAfterTruncate(t *testing.T) {
	ctx := context.Background()
	f, root := newNodeFS(t)
	var out fuse.EntryOut
	ch, fh1, _, errno := root.Create(ctx, "f", syscall.O_WRONLY, 0o644, &out)
	if errno != 0 {
		t.Fatal(errno)
	}
	fn := ch.Operations().(*fileNode)
	h1 := fh1.(*handle)
	h1.Write(ctx, []byte("first"), 0)
	h1.Flush(ctx) // close(2) of the first writer: version 1
	fh2, _, errno := fn.Open(ctx, syscall.O_WRONLY|syscall.O_TRUNC)
	if errno != 0 {
		t.Fatal(errno)
	}
	h1.Release(ctx) // the first writer's late RELEASE
	h2 := fh2.(*handle)
	h2.Write(ctx, []byte("second"), 0)
	h2.Flush(ctx) // version 2
	h2.Release(ctx)
	vs, err := f.cat.Versions(ctx, fn.ino)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Size != 5 || vs[1].Size != 6 {
		t.Fatalf("versions %+v, want sizes 5 and 6 only", vs)
	}
}

// xattrCounter counts the catalog's GetXattr calls.
type xattrCounter struct {
	versions.Catalog
	gets int
}

func (c *xattrCounter) GetXattr(ctx context.Context, ino versions.Ino, name string) ([]byte, error) {
	c.gets++
	return c.Catalog.GetXattr(ctx, ino, name)
}

// The kernel asks for security.capability before every write. An absent
// attribute is remembered for a second, so a stream of writes asks the
// catalog (an OSD round trip on RADOS) once, not once per write; a
// Setxattr on this mount shows at once.
func TestAbsentXattrRemembered(t *testing.T) {
	ctx := context.Background()
	f, root := newNodeFS(t)
	cnt := &xattrCounter{Catalog: f.cat}
	f.cat = cnt
	var out fuse.EntryOut
	ch, _, _, errno := root.Create(ctx, "f", syscall.O_RDWR, 0o644, &out)
	if errno != 0 {
		t.Fatal(errno)
	}
	n := ch.Operations().(*fileNode)
	const capName = "security.capability"
	for range 100 {
		if _, errno := n.Getxattr(ctx, capName, make([]byte, 64)); errno != syscall.ENODATA {
			t.Fatalf("getxattr of an absent attribute: %v; want ENODATA", errno)
		}
	}
	if cnt.gets != 1 {
		t.Errorf("100 getxattrs of an absent attribute asked the catalog %d times; want 1", cnt.gets)
	}
	if errno := n.Setxattr(ctx, capName, []byte("cap"), 0); errno != 0 {
		t.Fatal(errno)
	}
	buf := make([]byte, 64)
	if sz, errno := n.Getxattr(ctx, capName, buf); errno != 0 || string(buf[:sz]) != "cap" {
		t.Fatalf("getxattr right after setxattr: %q, %v", buf[:sz], errno)
	}
	if errno := n.Removexattr(ctx, capName); errno != 0 {
		t.Fatal(errno)
	}
	if _, errno := n.Getxattr(ctx, capName, buf); errno != syscall.ENODATA {
		t.Fatalf("getxattr after removexattr: %v; want ENODATA", errno)
	}
}

// TestWriteOnlyHandleKillsPrivs: a handle opened O_WRONLY bypasses the page
// cache (FOPEN_DIRECT_IO), and since the kernel then leaves it to the
// server, a write through it by anyone but root clears setuid, and setgid
// on a group-executable file, as the kernel does for writes through the
// page cache. Handles that can read keep the page cache.
func TestWriteOnlyHandleKillsPrivs(t *testing.T) {
	_, root := newNodeFS(t)
	ctx := context.Background()
	var out fuse.EntryOut
	ch, fh, flags, errno := root.Create(ctx, "f", syscall.O_RDWR, 0o755, &out)
	if errno != 0 {
		t.Fatal(errno)
	}
	if flags&fuse.FOPEN_DIRECT_IO != 0 {
		t.Errorf("an O_RDWR create bypasses the page cache: flags %#x", flags)
	}
	fh.(*handle).Release(ctx)
	fn := ch.Operations().(*fileNode)
	for _, tc := range []struct {
		mode, uid, want uint32
	}{
		{0o6775, 1000, 0o775},
		{0o6765, 1000, 0o2765}, // setgid without group exec stays
		{0o4700, 1000, 0o700},
		{0o6775, 0, 0o6775}, // root keeps both
		{0o755, 1000, 0o755},
	} {
		in := &fuse.SetAttrIn{}
		in.Valid = fuse.FATTR_MODE
		in.Mode = syscall.S_IFREG | tc.mode
		if errno := fn.Setattr(ctx, nil, in, &fuse.AttrOut{}); errno != 0 {
			t.Fatal(errno)
		}
		fh, flags, errno := fn.Open(ctx, syscall.O_WRONLY)
		if errno != 0 {
			t.Fatal(errno)
		}
		if flags&fuse.FOPEN_DIRECT_IO == 0 {
			t.Errorf("an O_WRONLY open keeps the page cache: flags %#x", flags)
		}
		h := fh.(*handle)
		wctx := &fuse.Context{Caller: fuse.Caller{Owner: fuse.Owner{Uid: tc.uid, Gid: tc.uid}}}
		if _, errno := h.Write(wctx, []byte("x"), 0); errno != 0 {
			t.Fatal(errno)
		}
		var ao fuse.AttrOut
		if errno := fn.Getattr(ctx, nil, &ao); errno != 0 {
			t.Fatal(errno)
		}
		if got := ao.Mode & 0o7777; got != tc.want {
			t.Errorf("mode %#o written by uid %d: %#o, want %#o", tc.mode, tc.uid, got, tc.want)
		}
		h.Flush(ctx)
		h.Release(ctx)
	}
}

// TestBlocksStableAcrossRelease: st_blocks of a file whose changes are
// committed (fsync) while it is still open is what the commit counted, not
// an estimate from the staging file, so it does not change when the last
// handle goes. A file of zeros is all holes once committed, though its
// staging file holds the zeros as data.
func TestBlocksStableAcrossRelease(t *testing.T) {
	_, root := newNodeFS(t)
	ctx := context.Background()
	var out fuse.EntryOut
	ch, fh, _, errno := root.Create(ctx, "zeros", syscall.O_RDWR, 0o644, &out)
	if errno != 0 {
		t.Fatal(errno)
	}
	fn := ch.Operations().(*fileNode)
	h := fh.(*handle)
	blocks := func() uint64 {
		t.Helper()
		var ao fuse.AttrOut
		if errno := fn.Getattr(ctx, nil, &ao); errno != 0 {
			t.Fatal(errno)
		}
		return ao.Blocks
	}
	if _, errno := h.Write(ctx, make([]byte, 5000), 0); errno != 0 {
		t.Fatal(errno)
	}
	if errno := h.Fsync(ctx, 0); errno != 0 {
		t.Fatal(errno)
	}
	open := blocks()
	h.Flush(ctx)
	h.Release(ctx)
	if closed := blocks(); open != closed || closed != 0 {
		t.Errorf("st_blocks %d while open after fsync, %d after release; want 0 both (all holes)", open, closed)
	}
}
