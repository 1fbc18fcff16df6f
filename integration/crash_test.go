package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill9MidCopy SIGKILLs casfs while a shell copies files in one at a
// time, logging each name (outside the mount) after its cp returned. The
// stale mount must be recognised and cleared, and every logged file must be
// there with its content after a remount: a file whose close returned is
// committed.
func TestKill9MidCopy(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "cp", "sha256sum", "xargs", "stat")
	const (
		nfiles    = 300
		killAfter = 80
	)
	work := t.TempDir()
	src := filepath.Join(work, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < nfiles; i++ {
		size := 1 + (i*7919)%150000
		if i%50 == 7 {
			size = 3<<20 + i // several chunks
		}
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%04d", i)), randBytes(size, uint64(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copied := filepath.Join(work, "copied.log")

	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	if err := os.Mkdir(m.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	copier := startShell(t, "", `for f in "$1"/*; do
		if cp "$f" "$2"/ 2>/dev/null; then echo "${f##*/}" >> "$3"; fi
	done; echo finished`, src, m.path("d"), copied)
	logged := func() []string {
		b, _ := os.ReadFile(copied)
		return strings.Fields(string(b))
	}
	if !waitFor(cmdTimeout, func() bool { return len(logged()) >= killAfter }) {
		t.Fatalf("only %d files copied within %v", len(logged()), cmdTimeout)
	}
	m.kill9()

	// Right away, while the kernel may still answer stat of the mount's
	// root from its attribute cache, casfs mount must see the stale mount
	// and say how to clear it.
	_, out := mountFails(t, store, mnt)
	for _, w := range []string{"stale mount", "casfs umount", "--clear-stale"} {
		if !strings.Contains(out, w) {
			t.Errorf("casfs mount on a stale mount: output does not mention %q:\n%s", w, out)
		}
	}
	copier.expect("finished")
	copier.wait()
	n := len(logged())
	if n >= nfiles {
		t.Fatalf("all %d files were copied before casfs died: kill earlier", n)
	}
	if !waitFor(10*time.Second, func() bool { return errors.Is(statErr(mnt), syscall.ENOTCONN) }) {
		t.Errorf("stat of the stale mount: %v, want ENOTCONN", statErr(mnt))
	}
	if res := exe(t, "", nil, "stat", mnt); res.code == 0 || !strings.Contains(res.stderr, "Transport endpoint is not connected") {
		t.Errorf("stat of the stale mount: %v", res)
	}

	if !isMounted(m.dir) {
		t.Fatalf("the killed casfs's mount at %s is not listed any more", m.dir)
	}
	run(t, "", casfsBin, "umount", mnt)
	if isMounted(m.dir) {
		t.Fatalf("casfs umount left the stale mount %s", m.dir)
	}
	m = startMount(t, store, mnt)
	checkLogged(t, src, m.path("d"), logged(), "after kill -9 and remount")
	t.Logf("%d of %d files copied before the kill", n, nfiles)

	// Once more, right after a file was written with a redirection, and
	// this time mount again at once with --clear-stale.
	sh(t, m.path(), `echo "written just before" > d/last`)
	m.kill9()
	m = startMount(t, store, mnt, "--clear-stale")
	checkLogged(t, src, m.path("d"), logged(), "after a second kill -9 and mount --clear-stale")
	if got := run(t, "", "cat", m.path("d/last")); got != "written just before\n" {
		t.Errorf("d/last, closed just before the second kill: %q", got)
	}
	m.stop()
	casfsOK(t, "fsck", store)
}

// checkLogged compares the sha256sum of each named file in dir with the
// same file in src: each must be there with the same content.
func checkLogged(t *testing.T, src, dir string, names []string, when string) {
	t.Helper()
	list := []byte(strings.Join(names, "\n") + "\n")
	want := exe(t, src, list, "xargs", "sha256sum")
	if want.code != 0 {
		t.Fatalf("%v", want)
	}
	got := exe(t, dir, list, "xargs", "sha256sum")
	if got.code != 0 {
		t.Errorf("%s: not every file whose cp returned is there: %v", when, got)
	}
	sameSums(t, when, want.stdout, got.stdout)
}

func statErr(p string) error {
	var st syscall.Stat_t
	return syscall.Stat(p, &st)
}
