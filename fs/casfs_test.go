package fs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore/local"
	"github.com/casfs/casfs/versions"
)

func (m *testMount) path(p string) string { return filepath.Join(m.dir, p) }

// versionsOf lists the versions the catalog holds for the live file p.
func (m *testMount) versionsOf(t *testing.T, p string) []versions.Version {
	t.Helper()
	a, err := m.repo.Resolve(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := m.repo.Catalog().Versions(context.Background(), a.Ino)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCloseCommitsOnlyChanges(t *testing.T) {
	m := mount(t)
	p := m.path("f.txt")
	mustWrite(t, p, []byte("one"))
	if n := len(m.versionsOf(t, "f.txt")); n != 1 {
		t.Fatalf("after first close: %d versions, want 1", n)
	}
	// Opening and closing without a change makes no version.
	for _, flag := range []int{os.O_RDONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND} {
		f, err := os.OpenFile(p, flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if n := len(m.versionsOf(t, "f.txt")); n != 1 {
		t.Fatalf("after unchanged closes: %d versions, want 1", n)
	}
	// Two descriptors of one open file: one version per close that follows
	// a change, not one per descriptor.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	fd2, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Close(fd2); err != nil { // close after a change: commits
		t.Fatal(err)
	}
	if n := len(m.versionsOf(t, "f.txt")); n != 2 {
		t.Fatalf("after closing the dup: %d versions, want 2", n)
	}
	if err := f.Close(); err != nil { // nothing changed since
		t.Fatal(err)
	}
	vs := m.versionsOf(t, "f.txt")
	if len(vs) != 2 {
		t.Fatalf("after closing the original: %d versions, want 2", len(vs))
	}
	if got, _ := os.ReadFile(p); string(got) != "two" {
		t.Fatalf("content %q", got)
	}
	// fsync commits too, without a close.
	f, _ = os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("+three"))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(m.versionsOf(t, "f.txt")); n != 3 {
		t.Fatalf("after fsync: %d versions, want 3", n)
	}
	f.Close()
	if got, _ := os.ReadFile(p); string(got) != "two+three" {
		t.Fatalf("content %q", got)
	}
}

func TestVersionsDirectory(t *testing.T) {
	m := mount(t)
	if err := os.MkdirAll(m.path("docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	contents := []string{"first\n", "second\n", "third, the longest\n"}
	for _, c := range contents {
		mustWrite(t, m.path("docs/report.txt"), []byte(c))
	}
	// Hidden from the root listing, reachable by name.
	ents, _ := os.ReadDir(m.dir)
	for _, e := range ents {
		if e.Name() == versionsName {
			t.Fatal(".versions is listed in the root")
		}
	}
	hist := m.path(".versions/docs/report.txt")
	names, err := os.ReadDir(hist)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 {
		var sizes []int64
		for _, v := range m.versionsOf(t, "docs/report.txt") {
			sizes = append(sizes, v.Size)
		}
		t.Fatalf("%d versions listed, want 3 (sizes %v)", len(names), sizes)
	}
	sorted := make([]string, len(names))
	for i, n := range names {
		sorted[i] = n.Name()
		if !strings.HasPrefix(n.Name(), "report.") || !strings.HasSuffix(n.Name(), ".txt") || strings.ContainsAny(n.Name(), " \t") {
			t.Errorf("version name %q", n.Name())
		}
	}
	if !sort.StringsAreSorted(sorted) {
		t.Errorf("names do not sort by time: %v", sorted)
	}
	for i, n := range sorted {
		p := filepath.Join(hist, n)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != contents[i] {
			t.Errorf("%s: %q %v, want %q", n, got, err, contents[i])
		}
		fi, _ := os.Stat(p)
		if fi.Size() != int64(len(contents[i])) || fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s: size %d mode %v", n, fi.Size(), fi.Mode())
		}
	}
	// Read-only everywhere below .versions.
	for name, op := range map[string]func() error{
		"create":   func() error { return os.WriteFile(filepath.Join(hist, "new"), nil, 0o644) },
		"write":    func() error { return os.WriteFile(filepath.Join(hist, sorted[0]), []byte("x"), 0o644) },
		"mkdir":    func() error { return os.Mkdir(m.path(".versions/newdir"), 0o755) },
		"remove":   func() error { return os.Remove(filepath.Join(hist, sorted[0])) },
		"chmod":    func() error { return os.Chmod(filepath.Join(hist, sorted[0]), 0o777) },
		"rename":   func() error { return os.Rename(m.path("docs/report.txt"), filepath.Join(hist, "x")) },
		"truncate": func() error { return os.Truncate(filepath.Join(hist, sorted[0]), 0) },
	} {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s under .versions: %v, want EROFS", name, err)
		}
	}
	// Restoring is a cp, and makes a new version.
	out, err := exec.Command("cp", filepath.Join(hist, sorted[0]), m.path("docs/report.txt")).CombinedOutput()
	if err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if got, _ := os.ReadFile(m.path("docs/report.txt")); string(got) != contents[0] {
		t.Fatalf("restored content %q", got)
	}
	if n := len(m.versionsOf(t, "docs/report.txt")); n != 4 {
		t.Fatalf("%d versions after restore, want 4", n)
	}
}

func TestDeletedFilesKeepHistory(t *testing.T) {
	m := mount(t)
	os.Mkdir(m.path("d"), 0o755)
	mustWrite(t, m.path("d/gone.txt"), []byte("v1"))
	mustWrite(t, m.path("d/gone.txt"), []byte("v2"))
	if err := os.RemoveAll(m.path("d")); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(m.path(".versions/d/gone.txt"))
	if err != nil || len(names) != 2 {
		t.Fatalf("history of a deleted file: %v %v", names, err)
	}
	got, err := os.ReadFile(m.path(".versions/d/gone.txt/" + names[1].Name()))
	if err != nil || string(got) != "v2" {
		t.Fatalf("deleted file's last version: %q %v", got, err)
	}
}

func TestUnlinkAndRenameOpenFile(t *testing.T) {
	m := mount(t)
	p := m.path("open.txt")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("hello"))
	if err := os.Rename(p, m.path("moved.txt")); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(" world"))
	if err := os.Remove(m.path("moved.txt")); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("!"))
	buf := make([]byte, 64)
	n, _ := f.ReadAt(buf, 0)
	if string(buf[:n]) != "hello world!" {
		t.Fatalf("read through the unlinked handle: %q", buf[:n])
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close of an unlinked file: %v", err)
	}
}

func TestTruncateGrowsHole(t *testing.T) {
	m := mount(t)
	p := m.path("sparse")
	mustWrite(t, p, []byte("head"))
	if err := os.Truncate(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if len(got) != 1<<20 || string(got[:4]) != "head" || bytes.Count(got[4:], []byte{0}) != len(got)-4 {
		t.Fatalf("grown file: len %d", len(got))
	}
	if n := len(m.versionsOf(t, "sparse")); n != 2 {
		t.Fatalf("truncate(2) made %d versions, want 2", n)
	}
	if err := os.Truncate(p, 2); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "he" {
		t.Fatalf("shrunk file: %q", got)
	}
}

func TestInodesStableNotFromContent(t *testing.T) {
	m := mount(t)
	data := randBytes(100<<10, 1)
	mustWrite(t, m.path("a"), data)
	mustWrite(t, m.path("b"), data)
	var sa, sb syscall.Stat_t
	syscall.Stat(m.path("a"), &sa)
	syscall.Stat(m.path("b"), &sb)
	if sa.Ino == sb.Ino || sa.Nlink != 1 || sb.Nlink != 1 {
		t.Fatalf("equal files share inode %d (nlink %d, %d)", sa.Ino, sa.Nlink, sb.Nlink)
	}
	a, _ := m.repo.Resolve(context.Background(), "a")
	if uint64(a.Ino) != sa.Ino {
		t.Fatalf("inode %d, catalog says %d", sa.Ino, a.Ino)
	}
	// Hard links share one.
	if err := os.Link(m.path("a"), m.path("a2")); err != nil {
		t.Fatal(err)
	}
	var sl syscall.Stat_t
	syscall.Stat(m.path("a2"), &sl)
	if sl.Ino != sa.Ino || sl.Nlink != 2 {
		t.Fatalf("hard link: ino %d nlink %d", sl.Ino, sl.Nlink)
	}
}

func TestParallelReads(t *testing.T) {
	m := mount(t)
	data := randBytes(4<<20, 2)
	mustWrite(t, m.path("big"), data)
	f, err := os.Open(m.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 0))
			buf := make([]byte, 64<<10)
			for i := 0; i < 50; i++ {
				off := r.Int64N(int64(len(data)))
				n, err := f.ReadAt(buf[:r.IntN(len(buf))+1], off)
				if err != nil && n == 0 {
					t.Errorf("ReadAt %d: %v", off, err)
					return
				}
				if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					t.Errorf("ReadAt %d: wrong bytes", off)
					return
				}
			}
		}(uint64(g))
	}
	wg.Wait()
}

func TestCorruptChunkIsEIO(t *testing.T) {
	m := mountLocal(t) // it damages a chunk file
	mustWrite(t, m.path("good"), randBytes(64<<10, 3))
	bad := randBytes(64<<10, 4)
	mustWrite(t, m.path("bad"), bad)
	a, _ := m.repo.Resolve(context.Background(), "bad")
	rec, err := m.repo.LoadRecipe(context.Background(), a.Recipe)
	if err != nil {
		t.Fatal(err)
	}
	// Flip the last byte of the stored chunk holding bad's last extent.
	id := rec.Extents[len(rec.Extents)-1].ID
	chunk, off, n, err := local.FindOnDisk(m.store, id)
	if err != nil {
		t.Fatalf("finding the chunk on disk: %v", err)
	}
	f, err := os.OpenFile(chunk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off+int64(n)-1); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off+int64(n)-1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// Reads must reach the store: not the staging file, which stays until
	// the kernel's asynchronous RELEASE, nor the kernel's page cache.
	m.unstaged(t)
	if f, err := os.Open(m.path("bad")); err == nil {
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
	}
	if _, err := os.ReadFile(m.path("bad")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading a corrupt chunk: %v, want EIO", err)
	}
	if _, err := os.ReadFile(m.path("good")); err != nil {
		t.Fatalf("another file: %v", err)
	}
}

func TestStagingFullIsENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CASFS_REQUIRE_EXTERNAL") != "" {
			t.Fatal("needs root to mount a small tmpfs")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", small).Run() })
	m := mountWith(t, func(o *Options) { o.StagingDir = small })
	mustWrite(t, m.path("kept"), []byte("committed before the disk filled"))
	f, err := os.Create(m.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var werr error
	chunk := make([]byte, 256<<10)
	for i := 0; i < 16 && werr == nil; i++ {
		_, werr = f.Write(chunk)
	}
	f.Close()
	if !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("write past a full staging dir: %v, want ENOSPC", werr)
	}
	if got, err := os.ReadFile(m.path("kept")); err != nil || string(got) != "committed before the disk filled" {
		t.Fatalf("committed file after ENOSPC: %q %v", got, err)
	}
}

// unstaged waits until no file of m has a staging file: until then, reads
// of a file just written and closed are served from its staging file (kept
// until the kernel's asynchronous RELEASE) rather than through the chunk
// cache and the store.
func (m *testMount) unstaged(t *testing.T) {
	t.Helper()
	waitFor(t, "the staging files to go", func() bool {
		m.fs.mu.Lock()
		defer m.fs.mu.Unlock()
		return len(m.fs.open) == 0
	})
}

// waitFor polls cond until it holds or a deadline passes: RELEASE reaches
// the server after close(2) has returned.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestShellRedirectMakesOneVersion(t *testing.T) {
	m := mount(t)
	mustWrite(t, m.path("f"), []byte("old content\n"))
	// sh opens with O_TRUNC, dup2s and closes the first descriptor before
	// echo writes: that close must not commit an empty version.
	if out, err := exec.Command("sh", "-c", "echo new > "+m.path("f")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	vs := m.versionsOf(t, "f")
	if len(vs) != 2 || vs[1].Size != 4 {
		t.Fatalf("after 'echo new > f': %d versions %+v, want 2 ending with 4 bytes", len(vs), vs)
	}
	// A bare truncate or a new empty file still makes its version, when
	// the last writer lets go.
	if out, err := exec.Command("sh", "-c", ": > "+m.path("f")+"; touch "+m.path("new")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	waitFor(t, "the truncate's version", func() bool { return len(m.versionsOf(t, "f")) == 3 })
	waitFor(t, "the new file's version", func() bool { return len(m.versionsOf(t, "new")) == 1 })
	if vs := m.versionsOf(t, "f"); vs[2].Size != 0 {
		t.Fatalf("truncated version has %d bytes", vs[2].Size)
	}
}

func TestVersionsFollowRecreatedFile(t *testing.T) {
	m := mount(t)
	hist := m.path(".versions/f.txt")
	mustWrite(t, m.path("f.txt"), []byte("one"))
	mustWrite(t, m.path("f.txt"), []byte("two"))
	if names, err := os.ReadDir(hist); err != nil || len(names) != 2 {
		t.Fatalf("before: %d versions, %v", len(names), err)
	}
	// Keep the history directory open, so the kernel cannot forget it.
	d, err := os.Open(hist)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	os.Remove(m.path("f.txt"))
	mustWrite(t, m.path("f.txt"), []byte("three, a new file at the same path"))
	// Lookups revalidate after the entry timeout; the listing must then
	// hold the deleted file's versions and the new file's.
	waitFor(t, "the new file's version under .versions", func() bool {
		names, err := os.ReadDir(hist)
		return err == nil && len(names) == 3
	})
}

// TestStoreAhead writes a file much larger than the store-ahead step, in
// order, and overwrites a little of what each round of storing ahead read
// after it read it (a hook runs between a round's reading and its merge).
// Rounds must not take what changed: the file reads back, and its recipe is
// the one a single commit of the final content makes.
func TestStoreAhead(t *testing.T) {
	m := mountWith(t, func(o *Options) { o.StoreAhead = 256 << 10 })
	data := randBytes(6<<20, 11)
	var mu sync.Mutex // data
	other, err := os.Create(m.path("big"))
	if err != nil {
		t.Fatal(err)
	}
	var overwrites atomic.Int64
	var finished atomic.Bool
	m.fs.aheadHook = func(base, end int64) {
		// Not a FUSE request: this goroutine may use the mount.
		mu.Lock()
		defer mu.Unlock()
		if finished.Load() {
			return
		}
		at := base + (end-base)/2
		patch := randBytes(4096, uint64(at))
		copy(data[at:], patch)
		if _, err := other.WriteAt(patch, at); err != nil {
			t.Error(err)
		}
		overwrites.Add(1)
	}
	f, err := os.OpenFile(m.path("big"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const step = 64 << 10
	buf := make([]byte, step)
	for off := 0; off < len(data); off += step {
		mu.Lock()
		copy(buf, data[off:off+step])
		mu.Unlock()
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	finished.Store(true)
	mu.Unlock()
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if m.fs.aheadMerged.Load() == 0 || overwrites.Load() == 0 {
		t.Errorf("%d rounds of storing ahead merged, %d overwritten: want some of each", m.fs.aheadMerged.Load(), overwrites.Load())
	}
	got, err := os.ReadFile(m.path("big"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %d bytes, %v; differ at %d", len(got), err, firstDiff(got, data))
	}
	ctx := context.Background()
	a, err := m.repo.Resolve(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := m.repo.LoadRecipe(ctx, a.Recipe)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.repo.Catalog().Create(ctx, versions.RootIno, "whole", versions.Attr{Mode: versions.ModeRegular | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	_, whole, err := m.repo.WriteFrom(ctx, b.Ino, bytes.NewReader(data), int64(len(data)), nil, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Extents) != len(whole.Extents) || rec.Size != whole.Size {
		t.Fatalf("recipe: %d extents, size %d; a single commit: %d extents, size %d", len(rec.Extents), rec.Size, len(whole.Extents), whole.Size)
	}
	for i := range rec.Extents {
		if rec.Extents[i] != whole.Extents[i] {
			t.Fatalf("extent %d: %+v, a single commit: %+v", i, rec.Extents[i], whole.Extents[i])
		}
	}
	t.Logf("%d rounds merged, %d overwrites under them", m.fs.aheadMerged.Load(), overwrites.Load())
}

// firstDiff is the first offset where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestXattrsThroughMount: user xattrs set, read, listed and removed through
// the kernel, with writes in between (each of which makes the kernel ask for
// security.capability, which the mount answers from its memory of absent
// attributes after the first time), and a new version's file keeps them.
func TestXattrsThroughMount(t *testing.T) {
	m := mount(t)
	p := m.path("x.txt")
	mustWrite(t, p, []byte("one"))
	buf := make([]byte, 64)
	if _, err := unix.Getxattr(p, "user.a", buf); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("getxattr of an absent attribute: %v; want ENODATA", err)
	}
	if err := unix.Setxattr(p, "user.a", []byte("alpha"), 0); err != nil {
		t.Fatal(err)
	}
	// Right after the set, and after the absent answer above was
	// remembered: the set must show at once on this mount.
	if n, err := unix.Getxattr(p, "user.a", buf); err != nil || string(buf[:n]) != "alpha" {
		t.Fatalf("getxattr after setxattr: %q, %v", buf[:n], err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := f.Write([]byte(" more")); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Getxattr(p, "user.a", buf); err != nil || string(buf[:n]) != "alpha" {
		t.Fatalf("getxattr after writes: %q, %v", buf[:n], err)
	}
	if n, err := unix.Listxattr(p, buf); err != nil || !strings.Contains(string(buf[:n]), "user.a") {
		t.Fatalf("listxattr: %q, %v", buf[:n], err)
	}
	if err := unix.Removexattr(p, "user.a"); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Getxattr(p, "user.a", buf); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("getxattr after removexattr: %v; want ENODATA", err)
	}
}

// TestUnlinkedFileDescriptor uses a file only through its descriptor after
// unlinking it, as temp files are used: once for a file that never had a
// version (it leaves the catalog at unlink) and once for one with history.
func TestUnlinkedFileDescriptor(t *testing.T) {
	m := mount(t)
	for _, committed := range []bool{false, true} {
		p := m.path(fmt.Sprintf("tmp-%v", committed))
		if committed {
			mustWrite(t, p, []byte("old"))
		}
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		fd := int(f.Fd())
		step := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("committed=%v: %s of an unlinked file: %v", committed, what, err)
			}
		}
		step("ftruncate", f.Truncate(4))
		step("fchmod", f.Chmod(0o600))
		step("fchown", f.Chown(1, 2))
		step("futimens", unix.Futimes(fd, []unix.Timeval{{Sec: 1}, {Sec: 7}}))
		var st unix.Stat_t
		step("fstat", unix.Fstat(fd, &st))
		if st.Size != 4 || st.Mode&0o7777 != 0o600 || st.Uid != 1 || st.Gid != 2 || st.Mtim.Sec != 7 || st.Nlink != 0 {
			t.Fatalf("committed=%v: fstat after changes: size %d mode %o uid %d gid %d mtime %d nlink %d",
				committed, st.Size, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Nlink)
		}
		step("fsetxattr", unix.Fsetxattr(fd, "user.t", []byte("v"), 0))
		if err := unix.Fsetxattr(fd, "user.t", []byte("w"), unix.XATTR_CREATE); !errors.Is(err, unix.EEXIST) {
			t.Fatalf("committed=%v: fsetxattr XATTR_CREATE of a present attribute: %v; want EEXIST", committed, err)
		}
		buf := make([]byte, 16)
		n, err := unix.Fgetxattr(fd, "user.t", buf)
		step("fgetxattr", err)
		if string(buf[:n]) != "v" {
			t.Fatalf("committed=%v: fgetxattr: %q", committed, buf[:n])
		}
		n, err = unix.Flistxattr(fd, buf)
		step("flistxattr", err)
		if string(buf[:n]) != "user.t\x00" {
			t.Fatalf("committed=%v: flistxattr: %q", committed, buf[:n])
		}
		step("fremovexattr", unix.Fremovexattr(fd, "user.t"))
		if _, err := unix.Fgetxattr(fd, "user.t", buf); !errors.Is(err, unix.ENODATA) {
			t.Fatalf("committed=%v: fgetxattr after fremovexattr: %v; want ENODATA", committed, err)
		}
		got := make([]byte, 16)
		n, _ = f.ReadAt(got, 0)
		if string(got[:n]) != "0123" {
			t.Fatalf("committed=%v: read after ftruncate: %q", committed, got[:n])
		}
		step("close", f.Close())
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("committed=%v: unlinked file came back: %v", committed, err)
		}
	}
}

// TestLookupOfFileBeingWritten looks a file up again (the entry timeout
// passed) while it is open and bigger than its last version: the lookup's
// answer must carry the unsaved size. With the last commit's size the
// kernel cut its idea of the file to it, and reads past it came back empty.
func TestLookupOfFileBeingWritten(t *testing.T) {
	m := mount(t)
	p := m.path("growing")
	mustWrite(t, p, []byte("small"))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := randBytes(100<<10, 3)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the mount's entry and attribute timeouts
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != int64(len(data)) {
		t.Fatalf("stat of the open file: size %v, %v; want %d", fi.Size(), err, len(data))
	}
	got := make([]byte, 10<<10)
	if n, err := f.ReadAt(got, 50<<10); n != len(got) || !bytes.Equal(got, data[50<<10:60<<10]) {
		t.Fatalf("read past the last version's size after a lookup: %d bytes, %v", n, err)
	}
}

// TestSpecialFiles makes a FIFO, a socket and a character device on the
// mount: each has its type, mode and device number, a FIFO carries data
// between two programs (the kernel's, not casfs's), and they take chmod,
// rename and unlink like any name.
func TestSpecialFiles(t *testing.T) {
	m := mount(t)
	fifo, sock, chr := m.path("fifo"), m.path("sock"), m.path("chr")
	if err := unix.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(sock, unix.S_IFSOCK|0o600, 0); err != nil {
		t.Fatal(err)
	}
	dev := int(unix.Mkdev(1, 3))
	if err := unix.Mknod(chr, unix.S_IFCHR|0o600, dev); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p          string
		mode, rdev uint32
	}{{fifo, unix.S_IFIFO | 0o640, 0}, {sock, unix.S_IFSOCK | 0o600, 0}, {chr, unix.S_IFCHR | 0o600, uint32(dev)}} {
		var st unix.Stat_t
		if err := unix.Lstat(c.p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != c.mode || uint32(st.Rdev) != c.rdev || st.Nlink != 1 || st.Size != 0 {
			t.Errorf("%s: mode %#o rdev %#x nlink %d size %d; want mode %#o rdev %#x", c.p, st.Mode, st.Rdev, st.Nlink, st.Size, c.mode, c.rdev)
		}
	}
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.Write([]byte("through the pipe"))
			f.Close()
		}
		done <- err
	}()
	got, err := os.ReadFile(fifo)
	if err != nil || string(got) != "through the pipe" || <-done != nil {
		t.Fatalf("FIFO carried %q (%v)", got, err)
	}
	if err := os.Chmod(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fifo, m.path("fifo2")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(m.path("fifo2")); err != nil || fi.Mode() != os.ModeNamedPipe|0o600 {
		t.Fatalf("renamed FIFO: %v, %v", fi.Mode(), err)
	}
	if err := os.Truncate(chr, 0); err == nil {
		t.Errorf("truncate of a device node succeeded")
	}
	for _, p := range []string{m.path("fifo2"), sock, chr} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if names, err := os.ReadDir(m.dir); err != nil || len(names) != 0 {
		t.Fatalf("left after removing them: %v, %v", names, err)
	}
}

// TestWriteOnlyHandleCoherent: writes through an O_WRONLY descriptor go
// around the page cache (FOPEN_DIRECT_IO), yet a descriptor that read the
// file before, and a shared mapping of it, see them at once, before and
// after the close that commits them; appends land at the end.
func TestWriteOnlyHandleCoherent(t *testing.T) {
	m := mount(t)
	p := m.path("f")
	old := randBytes(1<<20, 11)
	mustWrite(t, p, old)
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, len(old))
	if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("first read: %v", err)
	}
	mm, err := unix.Mmap(int(r.Fd()), 0, len(old), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mm)
	_ = mm[4096] // fault the page in

	check := func(when string, off int, want []byte) {
		t.Helper()
		b := make([]byte, len(want))
		if _, err := r.ReadAt(b, int64(off)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: read %q (%v), want %q", when, b, err, want)
		}
		if off+len(want) <= len(mm) && !bytes.Equal(mm[off:off+len(want)], want) {
			t.Errorf("%s: the mapping shows %q, want %q", when, mm[off:off+len(want)], want)
		}
	}
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("written"), 4096); err != nil {
		t.Fatal(err)
	}
	check("before close", 4096, []byte("written"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	check("after close", 4096, []byte("written"))

	a, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, old[:4096]...), "written"...), old[4096+7:]...)
	want = append(want, "tail"...)
	all, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(all, want) {
		t.Fatalf("whole file after both writes: %d bytes (%v), want %d, first difference at %d", len(all), err, len(want), firstDiff(all, want))
	}
	if vs := m.versionsOf(t, "f"); len(vs) != 3 {
		t.Errorf("%d versions, want 3 (create, write, append)", len(vs))
	}
}

// TestSeekDataHole: SEEK_DATA and SEEK_HOLE through the mount find a sparse
// file's holes, while it is being written (the staging file), once
// committed (HEAD's recipe) and under .versions/; st_blocks leaves the holes
// out, and cp copies the file off the mount as a sparse file.
func TestSeekDataHole(t *testing.T) {
	m := mount(t)
	p := m.path("sparse")
	const mib = 1 << 20
	w, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(randBytes(mib, 1), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(randBytes(mib, 2), 32*mib); err != nil {
		t.Fatal(err)
	}
	if err := w.Truncate(64 * mib); err != nil {
		t.Fatal(err)
	}
	type seek struct {
		off    int64
		whence int
		want   int64 // -1: ENXIO
	}
	seeks := []seek{
		{0, unix.SEEK_DATA, 0},
		{0, unix.SEEK_HOLE, mib},
		{mib, unix.SEEK_DATA, 32 * mib},
		{5 * mib, unix.SEEK_HOLE, 5 * mib},
		{32*mib + 5, unix.SEEK_DATA, 32*mib + 5},
		{32 * mib, unix.SEEK_HOLE, 33 * mib},
		{33 * mib, unix.SEEK_DATA, -1},
		{64 * mib, unix.SEEK_HOLE, -1},
	}
	check := func(when string, f *os.File) {
		t.Helper()
		for _, s := range seeks {
			got, err := unix.Seek(int(f.Fd()), s.off, s.whence)
			if s.want < 0 {
				if err != unix.ENXIO {
					t.Errorf("%s: lseek(%d, %d) = %d, %v; want ENXIO", when, s.off, s.whence, got, err)
				}
				continue
			}
			if err != nil || got != s.want {
				t.Errorf("%s: lseek(%d, %d) = %d, %v; want %d", when, s.off, s.whence, got, err, s.want)
			}
		}
	}
	check("while written", w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check("committed", r)

	vs := m.versionsOf(t, "sparse")
	if len(vs) != 1 {
		t.Fatalf("%d versions, want 1", len(vs))
	}
	ents, err := os.ReadDir(m.path(".versions/sparse"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("listing .versions/sparse: %v %v", ents, err)
	}
	vf, err := os.Open(m.path(".versions/sparse/" + ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	check(".versions", vf)

	// st_blocks counts what the file takes in chunks, not its holes: du
	// adds up stored bytes, and cp, which compares st_blocks with the
	// size, looks for the holes and keeps them.
	allocated := func(p string) int64 {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	waitFor(t, "st_blocks of the committed file", func() bool { return allocated(p) == 2*mib })
	if got := allocated(vf.Name()); got != 2*mib {
		t.Errorf(".versions file: %d bytes allocated, want %d", got, 2*mib)
	}
	out := filepath.Join(t.TempDir(), "copy")
	if b, err := exec.Command("cp", p, out).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, b)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 64*mib {
		t.Fatalf("cp off the mount: %v %v", fi, err)
	}
	if got := allocated(out); got > 4*mib {
		t.Errorf("cp off the mount allocated %d bytes for 2 MiB of data in 64 MiB", got)
	}
}

// TestCopyFileRange copies through copy_file_range(2), which the server
// answers itself: from a committed file, from a file being written, from a
// .versions/ file over the live one (a restore), at offsets inside the
// files, across a hole and past the source's end; then checks the bytes
// and the versions the closes commit.
func TestCopyFileRange(t *testing.T) {
	m := mount(t)
	const kib = 1 << 10
	src := randBytes(300*kib, 21)
	mustWrite(t, m.path("src"), src)
	old := randBytes(100*kib, 22)
	mustWrite(t, m.path("live"), old)
	mustWrite(t, m.path("live"), randBytes(50*kib, 23)) // a second version

	cfr := func(in, out *os.File, offIn, offOut int64, n int) int {
		t.Helper()
		k, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(out.Fd()), &offOut, n, 0)
		if err != nil {
			t.Fatalf("copy_file_range: %v", err)
		}
		return k
	}
	open := func(p string, flag int) *os.File {
		t.Helper()
		f, err := os.OpenFile(m.path(p), flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	// From a committed file, into the middle of a new one, and past the
	// source's end (a short copy).
	in := open("src", os.O_RDONLY)
	defer in.Close()
	out := open("dst", os.O_CREATE|os.O_WRONLY)
	want := make([]byte, 10*kib)
	if k := cfr(in, out, 0, 10*kib, 100*kib); k != 100*kib {
		t.Errorf("copied %d bytes, want %d", k, 100*kib)
	}
	want = append(want, src[:100*kib]...)
	if k := cfr(in, out, 250*kib, int64(len(want)), 100*kib); k != 50*kib {
		t.Errorf("copy past the end copied %d bytes, want %d", k, 50*kib)
	}
	want = append(want, src[250*kib:]...)
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(m.path("dst")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("dst: %d bytes (%v), want %d; first difference at %d", len(got), err, len(want), firstDiff(got, want))
	}
	if vs := m.versionsOf(t, "dst"); len(vs) != 1 {
		t.Errorf("dst has %d versions, want 1", len(vs))
	}

	// From a file open for writing (its staging file), with a hole.
	w := open("grow", os.O_CREATE|os.O_RDWR)
	if _, err := w.WriteAt([]byte("tail"), 64*kib); err != nil {
		t.Fatal(err)
	}
	out2 := open("copy-of-grow", os.O_CREATE|os.O_RDWR)
	if k := cfr(w, out2, 0, 0, 1<<20); k != 64*kib+4 {
		t.Errorf("copy from a staged file copied %d bytes, want %d", k, 64*kib+4)
	}
	w.Close()
	out2.Close()
	wantGrow := append(make([]byte, 64*kib), "tail"...)
	if got, err := os.ReadFile(m.path("copy-of-grow")); err != nil || !bytes.Equal(got, wantGrow) {
		t.Fatalf("copy-of-grow: %d bytes (%v), first difference at %d", len(got), err, firstDiff(got, wantGrow))
	}

	// A restore: the first version of live, copied over the live file.
	ents, err := os.ReadDir(m.path(".versions/live"))
	if err != nil || len(ents) != 2 {
		t.Fatalf(".versions/live: %v %v", ents, err)
	}
	first := open(".versions/live/"+ents[0].Name(), os.O_RDONLY)
	defer first.Close()
	live := open("live", os.O_WRONLY|os.O_TRUNC)
	if k := cfr(first, live, 0, 0, 1<<20); k != len(old) {
		t.Errorf("restore copied %d bytes, want %d", k, len(old))
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(m.path("live")); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("restored live: %d bytes (%v), first difference at %d", len(got), err, firstDiff(got, old))
	}
	if vs := m.versionsOf(t, "live"); len(vs) != 3 {
		t.Errorf("live has %d versions after the restore, want 3", len(vs))
	}

	// A whole committed file into an empty one, then written to before
	// the close: the copy takes the source's recipe as the new file's
	// prefix, and the commit chunks only what follows it.
	whole := open("whole", os.O_CREATE|os.O_RDWR)
	if k := cfr(in, whole, 0, 0, 1<<20); k != len(src) {
		t.Errorf("whole copy copied %d bytes, want %d", k, len(src))
	}
	if _, err := whole.WriteAt([]byte("more"), int64(len(src))); err != nil {
		t.Fatal(err)
	}
	if err := whole.Close(); err != nil {
		t.Fatal(err)
	}
	wantWhole := append(append([]byte{}, src...), "more"...)
	if got, err := os.ReadFile(m.path("whole")); err != nil || !bytes.Equal(got, wantWhole) {
		t.Fatalf("whole: %d bytes (%v), first difference at %d", len(got), err, firstDiff(got, wantWhole))
	}
	if vs := m.versionsOf(t, "whole"); len(vs) != 1 {
		t.Errorf("whole has %d versions, want 1", len(vs))
	}

	// Every byte went through the server's copy, not the kernel's
	// fallback to reads and writes; the restore and the whole copy took
	// their source's recipe.
	if got, want := m.fs.copied.Load(), int64(150*kib+64*kib+4+len(old)+len(src)); got != want {
		t.Errorf("the server copied %d bytes, want %d", got, want)
	}
	if got := m.fs.wholeCopies.Load(); got != 2 {
		t.Errorf("%d copies took their source's recipe, want 2 (the restore and the whole copy)", got)
	}
	var problems []versions.Problem
	if _, err := m.repo.Fsck(context.Background(), func(p versions.Problem) { problems = append(problems, p) }, nil); err != nil || len(problems) > 0 {
		t.Errorf("fsck: %v, %v", problems, err)
	}
}

// TestReaddirDots: a listing holds "." and ".." with the inode numbers
// stat gives, in the namespace and under .versions/, as on any local
// filesystem (the kernel does not add them for FUSE); the root's is the
// catalog's root inode, not 0.
func TestReaddirDots(t *testing.T) {
	m := mount(t)
	var st syscall.Stat_t
	if err := syscall.Stat(m.dir, &st); err != nil || st.Ino != uint64(versions.RootIno) {
		t.Errorf("stat of the root: inode %d (%v), want %d", st.Ino, err, versions.RootIno)
	}
	if err := os.MkdirAll(filepath.Join(m.dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "a", "b", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ino := func(p string) uint64 {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	for _, dir := range []string{m.dir, filepath.Join(m.dir, "a", "b"), filepath.Join(m.dir, ".versions", "a", "b", "f")} {
		got := map[string]uint64{}
		buf := make([]byte, 64<<10)
		fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		for {
			n, err := syscall.ReadDirent(fd, buf)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			for b := buf[:n]; len(b) > 0; {
				reclen := int(binary.NativeEndian.Uint16(b[16:]))
				name := b[19:reclen]
				name = name[:bytes.IndexByte(name, 0)]
				got[string(name)] = binary.NativeEndian.Uint64(b[0:])
				b = b[reclen:]
			}
		}
		syscall.Close(fd)
		up := ino(filepath.Join(dir, ".."))
		if dir == m.dir {
			up = ino(dir) // the root's parent is itself, as on any filesystem's root
		}
		if got["."] != ino(dir) || got[".."] != up {
			t.Errorf("%s: . is %d and .. %d; stat says %d and %d", dir, got["."], got[".."], ino(dir), up)
		}
	}
}
