//go:build ceph

package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// visibleWithin is how soon a change made through one mount of a shared
// store must show through another: the mounts' attribute and entry timeout
// is 1 s (fs.Mount), plus slack for a loaded CI machine.
const visibleWithin = 5 * time.Second

// twoMounts inits a rados:// store and mounts it twice, as two machines
// would.
func twoMounts(t *testing.T) (store string, a, b *mount) {
	t.Helper()
	needFUSE(t)
	store = radosStore(t)
	casfsOK(t, "init", store)
	return store, startMount(t, store, emptyDir(t)), startMount(t, store, emptyDir(t))
}

// readsWithin polls path until it holds want, and returns how long that
// took, failing the test after visibleWithin.
func readsWithin(t *testing.T, path, want string) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	if !waitFor(visibleWithin, func() bool {
		b, err := os.ReadFile(path)
		got = string(b)
		return err == nil && got == want
	}) {
		t.Fatalf("%s holds %q after %v, want %q", path, got, visibleWithin, want)
	}
	return time.Since(start)
}

// TestRadosMountsSeeEachOther writes through one mount and reads through
// the other: new files, new content of a file the other mount has cached,
// a new version of the same size, and the history under .versions/.
func TestRadosMountsSeeEachOther(t *testing.T) {
	t.Parallel()
	store, a, b := twoMounts(t)
	write := func(m *mount, name, data string) {
		t.Helper()
		if err := os.WriteFile(m.path(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "f.txt", "first\n")
	d1 := readsWithin(t, b.path("f.txt"), "first\n")
	// b now has f.txt's pages in its page cache.
	write(a, "f.txt", "second, longer\n")
	d2 := readsWithin(t, b.path("f.txt"), "second, longer\n")
	// Same size; the mtime moves by nanoseconds at most.
	write(a, "f.txt", "THIRD, LONGER\n\n")
	d3 := readsWithin(t, b.path("f.txt"), "THIRD, LONGER\n\n")
	t.Logf("visible on the other mount after %v, %v, %v", d1, d2, d3)

	var names []string
	if !waitFor(visibleWithin, func() bool {
		ents, err := os.ReadDir(b.path(".versions/f.txt"))
		names = names[:0]
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return err == nil && len(ents) == 3
	}) {
		t.Fatalf("b's .versions/f.txt lists %q, want 3 versions", names)
	}
	want := []string{"first\n", "second, longer\n", "THIRD, LONGER\n\n"}
	for i, n := range names {
		got, err := os.ReadFile(b.path(".versions/f.txt", n))
		if err != nil || string(got) != want[i] {
			t.Errorf("b's .versions/f.txt/%s: %q, %v; want %q", n, got, err, want[i])
		}
	}
	// Restoring on b is a new version that a sees.
	run(t, "", "cp", b.path(".versions/f.txt", names[0]), b.path("f.txt"))
	readsWithin(t, a.path("f.txt"), "first\n")
	a.stop()
	b.stop()
	casfsOK(t, "fsck", store)
	if got := casfsOK(t, "versions", store, "f.txt"); strings.Count(got, "\n") != 5 { // header + 4
		t.Errorf("casfs versions after the restore:\n%s", got)
	}
}

// TestRadosMountsWriteOneFile has both mounts write the same file, in turn
// and at once: every close is a version, none is lost, and HEAD is the last
// close.
func TestRadosMountsWriteOneFile(t *testing.T) {
	t.Parallel()
	store, a, b := twoMounts(t)
	if err := os.WriteFile(a.path("shared"), []byte("from a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	readsWithin(t, b.path("shared"), "from a\n")
	if err := os.WriteFile(b.path("shared"), []byte("from b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	readsWithin(t, a.path("shared"), "from b\n")

	const rounds = 10
	var wg sync.WaitGroup
	for _, m := range []*mount{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				data := fmt.Sprintf("%s round %d\n", filepath.Base(m.dir), i)
				if err := os.WriteFile(m.path("shared"), []byte(data), 0o644); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	a.stop()
	b.stop()
	out := casfsOK(t, "versions", store, "shared")
	if n := strings.Count(out, "\n") - 1; n != 2+2*rounds {
		t.Errorf("shared has %d versions, want %d (one per close):\n%s", n, 2+2*rounds, out)
	}
	head := casfsOK(t, "get", store, "shared")
	if !strings.HasSuffix(head, fmt.Sprintf(" round %d\n", rounds-1)) {
		t.Errorf("HEAD of shared is %q, want a last round", head)
	}
	casfsOK(t, "fsck", store)
}

// TestRadosMountsNamespace changes one directory from both mounts at once:
// creates, mkdirs, renames within and across directories, unlinks. Every
// change is one catalog transaction, so none is lost.
func TestRadosMountsNamespace(t *testing.T) {
	t.Parallel()
	store, a, b := twoMounts(t)
	if err := os.Mkdir(a.path("d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !waitFor(visibleWithin, func() bool { _, err := os.Stat(b.path("d")); return err == nil }) {
		t.Fatal("b does not see d")
	}
	const n = 40
	var wg sync.WaitGroup
	for k, m := range []*mount{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := "ab"[k : k+1]
			for i := range n {
				p := m.path("d", fmt.Sprintf("%s-%d", me, i))
				if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
					t.Error(err)
					return
				}
				if err := os.Mkdir(p+".dir", 0o755); err != nil {
					t.Error(err)
					return
				}
				if err := os.Rename(p, p+".dir/moved"); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 1 {
					if err := os.Rename(p+".dir", m.path(fmt.Sprintf("%s-%d.top", me, i))); err != nil {
						t.Error(err)
						return
					}
				}
				if i%4 == 3 {
					if err := os.Remove(m.path(fmt.Sprintf("%s-%d.top", me, i), "moved")); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Wait out the entry timeout, then both see the same tree.
	time.Sleep(1500 * time.Millisecond)
	list := func(m *mount) string {
		out := run(t, m.dir, "find", ".", "-path", "./.versions", "-prune", "-o", "-print")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	la, lb := list(a), list(b)
	if la != lb {
		t.Errorf("the mounts disagree:\na:\n%s\nb:\n%s", la, lb)
	}
	// Per mount: n files under d/*.dir or *.top, n/2 dirs left in d,
	// n/2 moved to the top, n/4 files removed.
	for _, want := range []struct {
		pattern string
		count   int
	}{
		{"/moved", 2 * (n - n/4)},
		{".top", 2 * n / 2 * 1},
	} {
		got := 0
		for _, l := range strings.Split(la, "\n") {
			if strings.Contains(l, want.pattern) && (want.pattern != ".top" || strings.HasSuffix(l, ".top")) {
				got++
			}
		}
		if got != want.count {
			t.Errorf("%d entries with %q, want %d:\n%s", got, want.pattern, want.count, la)
		}
	}
	a.stop()
	b.stop()
	casfsOK(t, "fsck", store)
}

// TestRadosGCWhileMounted runs `casfs gc` on the store while both mounts
// write and rewrite files: gc works beside mounts of a shared store, and
// every version still reads back afterwards.
func TestRadosGCWhileMounted(t *testing.T) {
	t.Parallel()
	store, a, b := twoMounts(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wrote := map[string]string{}
	var mu sync.Mutex
	for k, m := range []*mount{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := "ab"[k : k+1]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("%s-%d", me, i%5)
				data := strings.Repeat(fmt.Sprintf("%s %d\n", name, i), 1000+i)
				if err := os.WriteFile(m.path(name), []byte(data), 0o644); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				wrote[name] = data
				mu.Unlock()
			}
		}()
	}
	deleted := 0
	for round := range 4 {
		time.Sleep(time.Second)
		// Remove the oldest version of a file, so that gc (with a margin
		// short enough for a test) has chunks to delete while the mounts
		// keep committing.
		for _, name := range []string{"a-0", "b-0", "a-1", "b-1"} {
			res := casfs(t, "versions", store, name)
			lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
			if res.code != 0 || len(lines) < 3 {
				continue // not written yet, or only HEAD
			}
			casfsOK(t, "rm", "--version", strings.Fields(lines[1])[0], store, name)
		}
		out := casfsOK(t, "gc", "--margin", "2s", store)
		var chunks, inUse, del int
		if _, err := fmt.Sscanf(out, "%d chunks, %d in use, %d deleted", &chunks, &inUse, &del); err != nil {
			t.Fatalf("gc round %d printed %q: %v", round, out, err)
		}
		deleted += del
	}
	close(stop)
	wg.Wait()
	a.stop()
	b.stop()
	casfsOK(t, "fsck", store)
	for name, data := range wrote {
		if got := casfsOK(t, "get", store, name); got != data {
			t.Errorf("%s: HEAD holds %d bytes, the last close wrote %d", name, len(got), len(data))
		}
	}
	t.Logf("gc deleted %d chunks while the mounts wrote", deleted)
	if deleted == 0 {
		t.Error("gc deleted nothing: the test raced nothing")
	}
}

// TestRadosOSDDown stops the cluster's only OSD under a mount: reads,
// creates and commits fail with EIO within the --ceph-timeout (not a hang),
// nothing committed is lost, and when the OSD is back the mount works again
// and the change whose commit failed is still staged and lands at unmount.
//
// It is not parallel: the other tests of this package need the OSD, and
// Go runs the sequential tests before releasing the parallel ones.
func TestRadosOSDDown(t *testing.T) {
	needFUSE(t)
	dir := os.Getenv("CASFS_CEPH_DIR")
	if dir == "" {
		requireExternal(t, "the test cluster's directory (CASFS_CEPH_DIR, from start-cluster.sh's env)", fmt.Errorf("not set"))
	}
	osd := func(what string) {
		t.Helper()
		run(t, "", "ceph/osd.sh", what, dir) // the package directory is the cwd
	}
	store := radosStore(t)
	casfsOK(t, "init", store)
	src := filepath.Join(t.TempDir(), "before")
	before := strings.Repeat("stored before the mount\n", 5000)
	if err := os.WriteFile(src, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	casfsOK(t, "put", store, "before", src)
	m := startMount(t, store, emptyDir(t), "--ceph-timeout", "3s")
	if err := os.WriteFile(m.path("committed"), []byte("closed while the OSD was up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := os.OpenFile(m.path("held"), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	osd("stop")
	t.Cleanup(func() { exe(t, "", nil, "ceph/osd.sh", "start", dir) })
	start := time.Now()
	_, err = os.ReadFile(m.path("before")) // never read through this mount: not cached
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("reading a file with the OSD down: %v, want EIO", err)
	}
	if _, err := held.WriteString("written while the OSD was down\n"); err != nil {
		t.Errorf("writing to a file open before the OSD went down: %v (it only goes to staging)", err)
	}
	if err := held.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("closing a changed file with the OSD down: %v, want EIO", err)
	}
	if err := os.WriteFile(m.path("new"), []byte("x"), 0o644); !errors.Is(err, syscall.EIO) {
		t.Errorf("creating a file with the OSD down: %v, want EIO", err)
	}
	took := time.Since(start)
	t.Logf("with the OSD down, a read, a close and a create failed after %v", took.Round(time.Millisecond))
	if took > 60*time.Second {
		t.Errorf("failing took %v: the 3s timeout does not bound it", took)
	}

	osd("start")
	if got, err := os.ReadFile(m.path("before")); err != nil || string(got) != before {
		t.Errorf("reading after the OSD came back: %d bytes, %v", len(got), err)
	}
	if got, err := os.ReadFile(m.path("committed")); err != nil || string(got) != "closed while the OSD was up\n" {
		t.Errorf("the file committed before: %q, %v", got, err)
	}
	if err := os.WriteFile(m.path("after"), []byte("written after\n"), 0o644); err != nil {
		t.Errorf("writing after the OSD came back: %v", err)
	}
	m.stop() // commits what is still staged
	casfsOK(t, "fsck", store)
	for name, want := range map[string]string{
		"committed": "closed while the OSD was up\n",
		"after":     "written after\n",
		"held":      "written while the OSD was down\n",
	} {
		if got := casfs(t, "get", store, name); got.code != 0 || got.stdout != want {
			t.Errorf("casfs get %s: %v, want %q", name, got, want)
		}
	}
}

// TestRadosBadAccess tries what an operator gets wrong: a missing pool, a
// user whose key is wrong, a user who may only read, a cluster that does not
// answer. Each is a clear error from init or mount, in bounded time, and
// nothing is mounted.
func TestRadosBadAccess(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "ceph")
	store := radosStore(t)
	casfsOK(t, "init", store)
	pool := os.Getenv("CASFS_CEPH_POOL")
	dir := t.TempDir()

	// A user with read-only capabilities on the pool.
	user := fmt.Sprintf("casfs-ro-%d", time.Now().UnixNano())
	keyring := filepath.Join(dir, "ro.keyring")
	run(t, "", "ceph", "auth", "get-or-create", "client."+user, "mon", "allow r", "osd", "allow r pool="+pool, "-o", keyring)
	t.Cleanup(func() { exe(t, "", nil, "ceph", "auth", "del", "client."+user) })
	// A keyring with a key the cluster never issued.
	badKeyring := filepath.Join(dir, "bad.keyring")
	run(t, "", "ceph-authtool", "--create-keyring", badKeyring, "--gen-key", "-n", "client.nobody")
	// A config whose monitor nobody listens on.
	deadConf := filepath.Join(dir, "dead.conf")
	if err := os.WriteFile(deadConf, []byte("[global]\nmon host = 127.0.0.1:1\nauth client required = none\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing pool", []string{"mount", "rados://no-such-pool-casfs", emptyDir(t)}, "no such pool"},
		{"wrong key", []string{"mount", "--ceph-user", "nobody", "--keyring", badKeyring, store, emptyDir(t)}, "authentication failed"},
		{"read-only user mounts", []string{"mount", "--ceph-user", user, "--keyring", keyring, store, emptyDir(t)}, "lacks the capabilities"},
		{"read-only user inits", []string{"init", "--ceph-user", user, "--keyring", keyring, store + "-new"}, "lacks the capabilities"},
		{"dead cluster", []string{"mount", "--ceph-conf", deadConf, store, emptyDir(t)}, "not reachable"},
		{"no store", []string{"mount", store + "-none", emptyDir(t)}, "casfs init"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res := casfs(t, tc.args...)
			if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("%v\nwant a failure that says %q", res, tc.want)
			}
			if took := time.Since(start); took > 45*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	// Reading needs no more than read access.
	out := casfs(t, "ls", "--ceph-user", user, "--keyring", keyring, store)
	if out.code != 0 {
		t.Errorf("ls as a read-only user: %v", out)
	}
}
