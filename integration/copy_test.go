package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyTree copies a real tree of some 3000 files with cp -a and checks
// that the copy is identical (contents, symlinks, modes, owners, link
// counts, mtimes to the nanosecond), still after a remount, and that fsck
// finds the store sound.
func TestCopyTree(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "cp", "diff", "find")
	src := sourceTree(t, "crypto", "net", "go", "os", "math", "encoding")
	want := listing(t, src, "ns")
	files, dirs, links := countEntries(want)
	t.Logf("source: %d files, %d directories, %d symlinks", files, dirs, links)
	if files+dirs+links < 3000 || links < 5 {
		t.Fatalf("source tree too small for this test: %d files, %d dirs, %d symlinks", files, dirs, links)
	}

	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	runClean(t, "", "cp", "-a", src, m.path("tree"))
	check := func(when string) {
		t.Helper()
		diffTrees(t, src, m.path("tree"))
		sameListing(t, when, want, listing(t, m.path("tree"), "ns"))
		// Hard links stay one file: same inode under both names.
		ino := sh(t, m.path("tree/odd"), `stat -c %i target.txt hardlink`)
		if f := strings.Fields(ino); len(f) != 2 || f[0] != f[1] {
			t.Errorf("%s: target.txt and hardlink have inodes %q, want one", when, ino)
		}
	}
	check("after cp -a")
	m.stop()

	m = startMount(t, store, mnt)
	check("after remount")
	m.stop()
	casfsOK(t, "fsck", store)
}

// TestTarRoundTrip extracts a tarball onto the mount, checks every file's
// sha256sum, archives the mounted tree into a tarball on the mount itself,
// and extracts that elsewhere: the same sums again.
func TestTarRoundTrip(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "tar", "sha256sum", "find", "xargs")
	src := sourceTree(t, "archive", "compress", "image")
	work := t.TempDir()
	wantSums := sums(t, src)
	wantList := listing(t, src, "seconds") // tar keeps whole seconds
	run(t, "", "tar", "-cf", filepath.Join(work, "in.tar"), "-C", filepath.Dir(src), "src")

	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	if err := os.Mkdir(m.path("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	runClean(t, "", "tar", "-xpf", filepath.Join(work, "in.tar"), "-C", m.path("x"))
	sameSums(t, "extracted onto the mount", wantSums, sums(t, m.path("x/src")))
	sameListing(t, "extracted onto the mount", wantList, listing(t, m.path("x/src"), "seconds"))

	// Out again, through a tarball written to and read from the mount.
	runClean(t, "", "tar", "-cf", m.path("out.tar"), "-C", m.path("x"), "src")
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	removable(t, out)
	runClean(t, "", "tar", "-xpf", m.path("out.tar"), "-C", out)
	sameSums(t, "archived from the mount and extracted", wantSums, sums(t, filepath.Join(out, "src")))
	sameListing(t, "archived from the mount and extracted", wantList, listing(t, filepath.Join(out, "src"), "seconds"))
	// tar compares what it archived with the files it reads back.
	runClean(t, "", "tar", "-df", m.path("out.tar"), "-C", m.path("x"))
	m.stop()
	casfsOK(t, "fsck", store)
}
