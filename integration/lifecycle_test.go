package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountFails runs a casfs mount that must be refused: it has to exit
// non-zero within mountTimeout and leave nothing mounted. It returns the
// exit code and casfs's output.
func mountFails(t *testing.T, store, dir string, flags ...string) (int, string) {
	t.Helper()
	abs, _ := filepath.Abs(dir)
	already := isMounted(abs)
	m := tryMount(t, store, dir, flags...)
	m.checked = true // a non-zero exit is the point
	if !waitFor(mountTimeout, m.exited) {
		m.ready = true // it mounted, so cleanup unmounts it
		t.Fatalf("casfs mount %s %s still running after %v: it should have refused (mounted: %v)\n%s",
			store, dir, mountTimeout, isMounted(abs), m.log)
	}
	code := m.cmd.ProcessState.ExitCode()
	if code == 0 {
		t.Errorf("casfs mount %s %s exited 0, want a refusal\n%s", store, dir, m.log)
	}
	if !already && isMounted(abs) {
		t.Errorf("refused casfs mount left %s mounted", abs)
	}
	return code, m.log.String()
}

// TestMountRefusals checks that casfs mount refuses what it must, with
// messages that say what is wrong and what to do, and mounts nothing.
func TestMountRefusals(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	store := newLocalStore(t)
	base := t.TempDir()
	mk := func(p string, file bool) string {
		t.Helper()
		p = filepath.Join(base, p)
		var err error
		if file {
			err = os.WriteFile(p, []byte("x"), 0o644)
		} else {
			err = os.MkdirAll(p, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	nonEmpty := mk("nonempty", false)
	mk("nonempty/file", true)
	inside := filepath.Join(store, "mnt")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, store, dir string
		wants            []string
	}{
		{"missing mountpoint", store, filepath.Join(base, "nope"), []string{"does not exist", "mkdir -p"}},
		{"mountpoint is a file", store, mk("file", true), []string{"not a directory"}},
		{"non-empty mountpoint", store, nonEmpty, []string{"not empty"}},
		{"mountpoint inside the store", store, inside, []string{"inside the store"}},
		{"missing store", filepath.Join(base, "nostore"), mk("empty", false), []string{"no casfs store", "casfs init"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, out := mountFails(t, c.store, c.dir)
			for _, w := range c.wants {
				if !strings.Contains(out, w) {
					t.Errorf("casfs mount %s %s: output does not mention %q:\n%s", c.store, c.dir, w, out)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(base, "nope")); !os.IsNotExist(err) {
		t.Errorf("the missing mountpoint was created: %v", err)
	}
}

// TestWhileMounted checks what the mount's lock on the store means for other
// commands and mounts, and the two ways of unmounting from outside.
func TestWhileMounted(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "fusermount3")
	// The local store's lock: a remote one is shared by design (see
	// rados_test.go).
	store, mnt := newLocalStore(t), emptyDir(t)
	m := startMount(t, store, mnt)

	code, out := mountFails(t, newLocalStore(t), mnt)
	if !strings.Contains(out, "already a mount point") {
		t.Errorf("mounting on a mount point: %s", out)
	}
	code, out = mountFails(t, store, emptyDir(t))
	if code != 4 || !strings.Contains(out, "in use") || !strings.Contains(out, m.dir) {
		t.Errorf("mounting a mounted store: exit %d, want 4 and a message naming %s:\n%s", code, m.dir, out)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"versions", store, "x"},
		{"put", store, "x", src},
		{"get", store, "x"},
		{"fsck", store},
	} {
		res := casfs(t, args...)
		if res.code != 4 || !strings.Contains(res.stderr, "in use") || !strings.Contains(res.stderr, m.dir) {
			t.Errorf("while mounted: exit %d, want 4 and a message naming the mount %s\n%v", res.code, m.dir, res)
		}
	}

	// casfs umount: casfs exits 0 and the mount is gone.
	run(t, "", casfsBin, "umount", mnt)
	m.waitExit("casfs umount")
	// fusermount3 -u from outside, the same.
	m = startMount(t, store, mnt)
	run(t, "", "sh", "-c", "echo kept > "+m.path("f"))
	run(t, "", "fusermount3", "-u", mnt)
	m.waitExit("fusermount3 -u")
	// Unmounting what is not mounted is an error, not a silent success.
	if res := casfs(t, "umount", mnt); res.code == 0 || !strings.Contains(res.stderr, "not mounted") {
		t.Errorf("casfs umount of an unmounted directory: %v", res)
	}
	if got := casfsOK(t, "get", store, "f"); got != "kept\n" {
		t.Errorf("after fusermount3 -u: f holds %q", got)
	}
}

// TestSigtermCommitsOpenFile stops casfs while a program holds a file open
// with data written and not closed: casfs commits it, detaches the busy
// mount lazily, and exits 0 once the program lets go.
func TestSigtermCommitsOpenFile(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	h := holder(t, m.path("held.txt"), "unsaved data\n")
	h.expect("written")
	if names := strings.Fields(exe(t, "", nil, "ls", m.path(".versions/held.txt")).stdout); len(names) != 0 {
		t.Fatalf("held.txt has versions %q before any close", names)
	}

	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The open descriptor keeps the mount busy: casfs retries, then detaches
	// it lazily (it leaves the mount table) and serves the holder on.
	if !waitFor(exitTimeout, func() bool { return m.exited() || !isMounted(m.dir) }) {
		t.Fatalf("casfs neither exited nor detached the mount within %v of SIGTERM\n%s", exitTimeout, m.log)
	}
	// casfs logs before it detaches, but its log reaches m.log through a
	// pipe and a copying goroutine, which may lag behind the mount table.
	lazy := func() bool { return strings.Contains(m.log.String(), "detaching it lazily") }
	if !m.exited() && !waitFor(5*time.Second, lazy) {
		t.Errorf("the mount left the table without casfs saying it detached it lazily\n%s", m.log)
	}
	h.wait() // closes its stdin: it exits, and its descriptor closes
	m.waitExit("SIGTERM with a file open for writing")

	m = startMount(t, store, mnt)
	if got := run(t, "", "cat", m.path("held.txt")); got != "unsaved data\n" {
		t.Errorf("after SIGTERM and remount, held.txt holds %q", got)
	}
	if names := strings.Fields(run(t, "", "ls", m.path(".versions/held.txt"))); len(names) != 1 {
		t.Errorf("held.txt has versions %q, want 1", names)
	}
	m.stop()
	casfsOK(t, "fsck", store)
}
