package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVersionsDir writes a file three times with shell redirections, finds
// the three versions under .versions/ in time order, restores one with cp,
// and checks .versions/ is read-only, hidden, keeps deleted files, and
// agrees with the CLI after unmounting.
func TestVersionsDir(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "ls", "cat", "cp")
	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	dir := m.path()
	for _, s := range []string{"one", "two", "three"} {
		sh(t, dir, `echo "$1" > notes.txt`, s)
	}
	names := strings.Fields(run(t, dir, "ls", ".versions/notes.txt"))
	nameRE := regexp.MustCompile(`^notes\.(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{9}Z(-\d{10})?)\.txt$`)
	if len(names) != 3 {
		t.Fatalf("ls .versions/notes.txt: %q, want 3 versions", names)
	}
	for _, n := range names {
		if !nameRE.MatchString(n) {
			t.Errorf("version name %q does not look like notes.<version id>.txt", n)
		}
	}
	// The names sort in commit order.
	for i, want := range []string{"one", "two", "three"} {
		if got := run(t, dir, "cat", ".versions/notes.txt/"+names[i]); got != want+"\n" {
			t.Errorf("%s (version %d): %q, want %q", names[i], i+1, got, want+"\n")
		}
	}
	// Restore the first: a fourth version with its content.
	run(t, dir, "cp", ".versions/notes.txt/"+names[0], "notes.txt")
	if got := run(t, dir, "cat", "notes.txt"); got != "one\n" {
		t.Errorf("after restoring the first version: %q", got)
	}
	after := strings.Fields(run(t, dir, "ls", ".versions/notes.txt"))
	if len(after) != 4 || strings.Join(after[:3], " ") != strings.Join(names, " ") {
		t.Fatalf("after the restore: %q, want the 3 earlier versions and a 4th", after)
	}
	if got := run(t, dir, "cat", ".versions/notes.txt/"+after[3]); got != "one\n" {
		t.Errorf("the restored version holds %q", got)
	}

	// Read-only, and hidden from the root listing.
	res := exe(t, dir, nil, "sh", "-c", "echo x > .versions/notes.txt/new")
	if res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf("writing into .versions: want EROFS: %v", res)
	}
	res = exe(t, dir, nil, "rm", ".versions/notes.txt/"+names[1])
	if res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf("removing a version: want EROFS: %v", res)
	}
	if ls := run(t, dir, "ls", "-a"); strings.Contains(ls, ".versions") || !strings.Contains(ls, "notes.txt") {
		t.Errorf("ls -a of the root: %q, want notes.txt and no .versions", ls)
	}
	// A deleted file keeps its history under its directory.
	sh(t, dir, `mkdir d; echo gone > d/old; rm d/old; test ! -e d/old`)
	if got := sh(t, dir, `cat .versions/d/old/*`); got != "gone\n" {
		t.Errorf("history of a deleted file: %q", got)
	}
	m.stop()

	// The CLI sees the same four versions.
	lines := strings.Split(strings.TrimSpace(casfsOK(t, "versions", store, "notes.txt")), "\n")
	if len(lines) != 5 {
		t.Fatalf("casfs versions: %q, want a header and 4 versions", lines)
	}
	id := nameRE.FindStringSubmatch(names[1])[1]
	if !strings.HasPrefix(lines[2], id) {
		t.Errorf("casfs versions line 2 is %q, want version %s", lines[2], id)
	}
	if got := casfsOK(t, "get", store, "notes.txt", "--version", id); got != "two\n" {
		t.Errorf("casfs get --version %s: %q", id, got)
	}
}

// TestTwoWriters has two processes open one file for writing, then write
// and close it one after the other: A opens, B opens, A writes and closes, B
// writes and closes. Each close commits a version; the live file holds the
// last (B's). The contents have the same length so that B's write replaces
// A's bytes, as on any POSIX filesystem: the two descriptors share the file.
func TestTwoWriters(t *testing.T) {
	t.Parallel()
	needFUSE(t)
	needTools(t, "sh", "cat", "ls")
	store, mnt := newStore(t), emptyDir(t)
	m := startMount(t, store, mnt)
	const script = `exec 3>"$1"; echo opened; read go; printf '%s\n' "$2" >&3; exec 3>&-; echo closed`
	a := startShell(t, m.path(), script, "shared.txt", "written by process A")
	a.expect("opened")
	b := startShell(t, m.path(), script, "shared.txt", "written by process B")
	b.expect("opened")
	a.say("go")
	a.expect("closed")
	a.wait()
	if got := run(t, "", "cat", m.path("shared.txt")); got != "written by process A\n" {
		t.Errorf("after A's close, with B's descriptor still open: %q", got)
	}
	b.say("go")
	b.expect("closed")
	b.wait()

	if got := run(t, "", "cat", m.path("shared.txt")); got != "written by process B\n" {
		t.Errorf("live file after both closed: %q, want B's", got)
	}
	names := strings.Fields(run(t, "", "ls", m.path(".versions/shared.txt")))
	var contents []string
	for _, n := range names {
		contents = append(contents, run(t, "", "cat", m.path(".versions/shared.txt", n)))
	}
	want := []string{"written by process A\n", "written by process B\n"}
	if strings.Join(contents, "|") != strings.Join(want, "|") {
		t.Errorf(".versions/shared.txt holds %q (%q), want A's then B's: %q", names, contents, want)
	}
	m.stop()
	casfsOK(t, "fsck", store)
}

// shell is a running program (mostly an sh script) that the test talks to: lines to its stdin,
// lines from its stdout.
type shell struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan string
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// startShell starts sh -c script with args as $1...; it is killed when the
// test ends if still running.
func startShell(t *testing.T, dir, script string, args ...string) *shell {
	t.Helper()
	return startProcess(t, dir, nil, "sh", append([]string{"-c", script, "sh"}, args...)...)
}

// holder starts a process that writes data to path and holds the file open
// until told to go (say anything, or wait).
func holder(t *testing.T, path, data string) *shell {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startProcess(t, "", []string{"CASFS_INTEGRATION_HELPER=hold", "CASFS_HOLD_FILE=" + path, "CASFS_HOLD_DATA=" + data}, exe)
}

// startProcess starts a program to talk to, like startShell.
func startProcess(t *testing.T, dir string, extraEnv []string, name string, args ...string) *shell {
	t.Helper()
	s := &shell{t: t, lines: make(chan string, 100), stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(name, args...)
	s.cmd.Dir = dir
	s.cmd.Env = env(extraEnv...)
	s.cmd.Stderr = s.stderr
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		s.err = s.cmd.Wait()
		close(s.lines)
		close(s.done)
	}()
	t.Cleanup(func() {
		s.in.Close()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Signal(syscall.SIGKILL)
			<-s.done
		}
	})
	return s
}

// expect waits for the next line of output and fails the test unless it is
// want.
func (s *shell) expect(want string) {
	s.t.Helper()
	select {
	case got, ok := <-s.lines:
		if !ok {
			<-s.done
			s.t.Fatalf("sh exited (%v) before printing %q; stderr:\n%s", s.err, want, s.stderr)
		}
		if got != want {
			s.t.Fatalf("sh printed %q, want %q; stderr:\n%s", got, want, s.stderr)
		}
	case <-time.After(cmdTimeout):
		s.t.Fatalf("sh did not print %q within %v (hung?); stderr:\n%s", want, cmdTimeout, s.stderr)
	}
}

// say writes a line to the script's stdin.
func (s *shell) say(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatalf("writing to sh: %v", err)
	}
}

// wait waits for the script to exit and fails the test unless it exited 0
// with nothing on stderr.
func (s *shell) wait() {
	s.t.Helper()
	s.in.Close()
	select {
	case <-s.done:
	case <-time.After(cmdTimeout):
		s.t.Fatalf("sh still running after %v", cmdTimeout)
	}
	if s.err != nil || s.stderr.String() != "" {
		s.t.Fatalf("sh: %v; stderr:\n%s", s.err, s.stderr)
	}
}
