package integration

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// sourceTree copies the named directories of Go's own source tree (real
// files, present wherever Go is) into a temp dir with cp -a, and adds what
// that tree lacks: symlinks of every kind, hard links, odd names and modes,
// exact timestamps, and files large enough for several chunks.
func sourceTree(t *testing.T, dirs ...string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-a"}
	for _, d := range dirs {
		args = append(args, filepath.Join(goroot, "src", d))
	}
	run(t, "", "cp", append(args, src)...)
	removable(t, src)
	addOddFiles(t, filepath.Join(src, "odd"))
	return src
}

// removable makes every directory under root writable again when the test
// ends, before its temp dirs are removed: a user who is not root cannot
// empty odd/ro-dir otherwise.
func removable(t *testing.T, root string) {
	t.Cleanup(func() {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

// addOddFiles makes dir with the cases a copied tree should keep exactly.
func addOddFiles(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode)) // not masked by the umask
	}
	must(os.MkdirAll(dir, 0o755))
	write("target.txt", []byte("the target\n"), 0o644)
	write("sub/inner.txt", []byte("inner\n"), 0o644)
	write("empty", nil, 0o644)
	write("run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("secret", []byte("only the owner\n"), 0o600)
	write("readonly", []byte("read only\n"), 0o444)
	write("with space/ünïcödé ✓ (1).txt", []byte("odd name\n"), 0o644)
	write(strings.Repeat("n", 255), []byte("longest name\n"), 0o644)
	deep := "deep"
	for i := 0; i < 20; i++ {
		deep = filepath.Join(deep, "d")
	}
	write(filepath.Join(deep, "leaf"), []byte("deep leaf\n"), 0o644)

	// Several chunks (the default chunker averages 1 MiB), and a copy
	// with a few bytes changed in the middle: it shares most chunks.
	big := randBytes(5<<20+12345, 1)
	write("big.bin", big, 0o644)
	edited := bytes.Clone(big)
	copy(edited[len(edited)/2:], "a change in the middle")
	write("big-edited.bin", edited, 0o644)
	// A hole followed by data.
	f, err := os.Create(filepath.Join(dir, "sparse"))
	must(err)
	_, err = f.WriteAt([]byte("after a 3 MiB hole\n"), 3<<20)
	must(err)
	must(f.Close())

	must(os.Link(filepath.Join(dir, "target.txt"), filepath.Join(dir, "hardlink")))
	must(os.Symlink("target.txt", filepath.Join(dir, "link-file")))
	must(os.Symlink("link-file", filepath.Join(dir, "link-chain")))
	must(os.Symlink("sub", filepath.Join(dir, "link-dir")))
	must(os.Symlink("../odd/sub/inner.txt", filepath.Join(dir, "link-up")))
	must(os.Symlink("/nonexistent/absolute/target", filepath.Join(dir, "link-absolute")))
	must(os.Symlink("no/such/file", filepath.Join(dir, "link-dangling")))

	must(os.Mkdir(filepath.Join(dir, "private"), 0o700))
	write("ro-dir/kept.txt", []byte("in a read-only dir\n"), 0o644)
	must(os.Chmod(filepath.Join(dir, "ro-dir"), 0o555))

	// Exact timestamps, nanoseconds included, set last.
	ts := time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	for _, name := range []string{"target.txt", "empty", "big.bin", "sub", "private"} {
		must(os.Chtimes(filepath.Join(dir, name), ts, ts))
	}
	must(os.Chtimes(dir, ts, ts))
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// listing describes every entry under dir, one sorted line each, as find(1)
// sees it: path, type, mode, owner, link target, and for non-directories
// size and link count; with mtimes the modification time to the
// nanosecond (second with seconds).
func listing(t *testing.T, dir string, mtimes string) []string {
	t.Helper()
	out := run(t, dir, "find", ".", "-printf", "%P\t%y\t%#m\t%U:%G\t%l\t%s\t%n\t%T@\n")
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 8 {
			t.Fatalf("find printed %q", l)
		}
		if f[1] == "d" {
			f[5], f[6] = "-", "-" // directory sizes and link counts differ between filesystems
		}
		switch mtimes {
		case "":
			f[7] = "-"
		case "seconds":
			f[7], _, _ = strings.Cut(f[7], ".")
		}
		lines = append(lines, strings.Join(f, "\t"))
	}
	sort.Strings(lines)
	return lines
}

// sameListing fails the test if want and got differ, naming the first
// differences.
func sameListing(t *testing.T, what string, want, got []string) {
	t.Helper()
	w := map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	g := map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	var diffs []string
	for _, l := range want {
		if !g[l] {
			diffs = append(diffs, "- "+l)
		}
	}
	for _, l := range got {
		if !w[l] {
			diffs = append(diffs, "+ "+l)
		}
	}
	if len(diffs) == 0 {
		return
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i][2:] < diffs[j][2:] })
	if len(diffs) > 40 {
		diffs = append(diffs[:40], "...")
	}
	t.Errorf("%s: %d entries want, %d got; differences (- want, + got; path type mode owner link size nlink mtime):\n%s",
		what, len(want), len(got), strings.Join(diffs, "\n"))
}

// sums is sha256sum of every regular file under dir, by path.
func sums(t *testing.T, dir string) string {
	t.Helper()
	out := sh(t, dir, `find . -type f -print0 | sort -z | xargs -0 -r sha256sum`)
	if out == "" {
		t.Fatalf("no files under %s", dir)
	}
	return out
}

// sameSums fails the test unless two sums outputs are equal.
func sameSums(t *testing.T, what, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	sameListing(t, what+" (sha256sum)", wl, gl)
}

// diffTrees runs diff -r --no-dereference: contents of files and targets of
// symlinks must be identical, and no entry may be missing on either side.
func diffTrees(t *testing.T, a, b string) {
	t.Helper()
	res := exe(t, "", nil, "diff", "-r", "--no-dereference", a, b)
	if res.code != 0 || res.stdout != "" {
		out := res.stdout
		if len(out) > 4000 {
			out = out[:4000] + "\n..."
		}
		t.Errorf("diff -r --no-dereference %s %s: exit %d\n%s%s", a, b, res.code, out, res.stderr)
	}
}

// countEntries counts a listing's regular files, directories and symlinks.
func countEntries(lines []string) (files, dirs, links int) {
	for _, l := range lines {
		switch strings.Split(l, "\t")[1] {
		case "d":
			dirs++
		case "l":
			links++
		default:
			files++
		}
	}
	return
}
