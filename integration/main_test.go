package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	casfsBin string // the casfs binary under test
	goroot   string // `go env GOROOT`: its src/ is the real tree the tests copy
)

func TestMain(m *testing.M) {
	if os.Getenv("CASFS_INTEGRATION_HELPER") == "hold" {
		os.Exit(holdMain())
	}
	os.Exit(testMain(m))
}

// holdMain is this test binary run as a helper process (see holder): it
// opens CASFS_HOLD_FILE for writing, writes CASFS_HOLD_DATA, says
// "written", and keeps the descriptor open, never closing it or any dup of
// it, until its stdin ends. (A shell cannot: "printf >&3" closes a dup of
// fd 3 afterwards, and that close commits.)
func holdMain() int {
	f, err := os.OpenFile(os.Getenv("CASFS_HOLD_FILE"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := f.WriteString(os.Getenv("CASFS_HOLD_DATA")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("written")
	io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(f) // no finalizer may close it first; exit does
	return 0
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "casfs-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	casfsBin = filepath.Join(dir, "casfs")
	args := []string{"build", "-o", casfsBin}
	if os.Getenv("CASFS_INTEGRATION_RACE") != "" {
		args = append(args, "-race")
	}
	if withCeph {
		args = append(args, "-tags", "ceph")
	}
	build := exec.Command("go", append(args, "github.com/casfs/casfs/cmd/casfs")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building casfs:", err)
		return 1
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOROOT:", err)
		return 1
	}
	goroot = strings.TrimSpace(string(out))
	return m.Run()
}

// requireExternal skips the test when something outside Go is missing, or
// fails it when CASFS_REQUIRE_EXTERNAL is set (CI must not pass by
// skipping).
func requireExternal(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CASFS_REQUIRE_EXTERNAL") != "" {
		t.Fatalf("%s is required (CASFS_REQUIRE_EXTERNAL is set) but missing: %v; scripts/install-deps.sh installs it", what, err)
	}
	t.Skipf("%s missing: %v (scripts/install-deps.sh installs it)", what, err)
}

// needTools checks that each program is on PATH.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		_, err := exec.LookPath(n)
		requireExternal(t, n, err)
	}
}

// needFUSE checks for what mounting and unmounting need.
func needFUSE(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	requireExternal(t, "/dev/fuse", err)
	needTools(t, "fusermount3")
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every 10 ms until it holds or timeout passes, and
// reports whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Deadlines. They are generous: CI shares two cores with other packages'
// tests, and a deadline that passes is a failure, not a retry.
const (
	mountTimeout = 30 * time.Second // casfs mount until the mount is listed
	exitTimeout  = 60 * time.Second // SIGTERM or unmount until casfs exits
	cmdTimeout   = 4 * time.Minute  // any one program run against a mount
)

// env is the environment of every program the tests run: stable messages,
// and no user or system git configuration.
func env(extra ...string) []string {
	e := append(os.Environ(), "LC_ALL=C", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GORACE=atexit_sleep_ms=0")
	return append(e, extra...)
}

// result is a finished program.
type result struct {
	cmd            string
	stdout, stderr string
	code           int // -1: killed by a signal
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", r.cmd, r.code, r.stdout, r.stderr)
}

// exe runs a program in dir (the test's cwd when empty) and returns what it
// did. A program still running after cmdTimeout is killed and fails the
// test: against a mount that means casfs hung.
func exe(t *testing.T, dir string, stdin []byte, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env()
	cmd.WaitDelay = 10 * time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{cmd: name + " " + strings.Join(args, " "), stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: still running after %v (hung?): %v\nstderr:\n%s", res.cmd, cmdTimeout, err, res.stderr)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", res.cmd, err)
	}
	return res
}

// run runs a program and fails the test unless it exits 0; it returns
// stdout.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	res := exe(t, dir, nil, name, args...)
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	return res.stdout
}

// runClean is run for programs that must not complain either: a warning on
// stderr (cp -a: "preserving permissions ... Operation not supported") fails
// the test.
func runClean(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	res := exe(t, dir, nil, name, args...)
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("%v", res)
	}
	return res.stdout
}

// sh runs a shell script with positional parameters ($1...) and fails the
// test unless it exits 0; it returns stdout.
func sh(t *testing.T, dir, script string, args ...string) string {
	t.Helper()
	return run(t, dir, "sh", append([]string{"-c", "set -e; " + script, "sh"}, args...)...)
}

// casfs runs the casfs CLI (not mount: see startMount).
func casfs(t *testing.T, args ...string) result {
	t.Helper()
	return exe(t, "", nil, casfsBin, args...)
}

// casfsOK runs the casfs CLI and fails the test unless it exits 0.
func casfsOK(t *testing.T, args ...string) string {
	t.Helper()
	res := casfs(t, args...)
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	return res.stdout
}

// newStore makes an empty store: in a temp dir, or, when CASFS_TEST_STORE
// is "rados", in a fresh namespace of the test Ceph cluster (see
// radosStore), so that every test that uses it runs against rados:// too.
func newStore(t *testing.T) string {
	t.Helper()
	if os.Getenv("CASFS_TEST_STORE") == "rados" {
		store := radosStore(t)
		casfsOK(t, "init", store)
		return store
	}
	return newLocalStore(t)
}

// newLocalStore makes an empty local store in a temp dir, for tests of what
// only a local store does (its lock, a mountpoint inside it).
func newLocalStore(t *testing.T) string {
	t.Helper()
	store := filepath.Join(t.TempDir(), "store")
	casfsOK(t, "init", store)
	return store
}

// emptyDir makes an empty directory to mount on.
func emptyDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// mount is one `casfs mount` process.
type mount struct {
	t     *testing.T
	store string
	dir   string // the mountpoint, absolute
	cmd   *exec.Cmd
	log   *syncBuffer // casfs's stdout and stderr
	done  chan struct{}
	err   error // cmd.Wait's, valid once done is closed
	// killed is set when the test kills casfs on purpose: its exit status
	// is then not checked, and the mount it leaves is the test's to clear.
	killed  bool
	checked bool // exit status already checked
	// ready is set once this casfs's mount served a request: from then
	// on, a casfs mount at dir is its own to check and clean up. (A mount
	// there before, stale or another casfs's in a test of a refusal, is
	// not.)
	ready bool
}

// startMount starts `casfs mount [flags] store dir`, waits until the mount
// is listed and live, and makes sure it is gone when the test ends.
func startMount(t *testing.T, store, dir string, flags ...string) *mount {
	t.Helper()
	m := tryMount(t, store, dir, flags...)
	// Ready when casfs runs and a live casfs mount is at dir (a stale one
	// may have been there before, with --clear-stale).
	if !waitFor(mountTimeout, func() bool { return m.exited() || isMounted(m.dir) && live(m.dir) }) || m.exited() {
		m.checked = true // reported here; cleanup still stops it
		t.Fatalf("casfs mount %s %s: not mounted after %v (exited: %v, %v)\n%s",
			store, dir, mountTimeout, m.exited(), m.err, m.log)
	}
	m.ready = true
	return m
}

// tryMount starts casfs mount without waiting for it; cleanup is
// registered.
func tryMount(t *testing.T, store, dir string, flags ...string) *mount {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &mount{t: t, store: store, dir: abs, log: &syncBuffer{}, done: make(chan struct{})}
	args := append(append([]string{"mount"}, flags...), store, dir)
	m.cmd = exec.Command(casfsBin, args...)
	m.cmd.Env = env()
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log // Stdin nil: /dev/null
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	m.cmd.WaitDelay = 10 * time.Second
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(m.cleanup)
	return m
}

// mounted reports whether this casfs's mount is (still) at dir.
func (m *mount) mounted() bool { return m.ready && isMounted(m.dir) }

// fuseMagic is statfs's f_type on a FUSE mount.
const fuseMagic = 0x65735546

// live reports whether a FUSE server answers statfs at dir (which the kernel
// never answers from its cache). A hung server fails it after a while.
//
// The answer must come from FUSE: a mount with --clear-stale detaches a
// stale mount while startMount polls, and statfs of the directory under it
// succeeds too. Checking isMounted first did not catch that, as the detach
// can fall between the two checks.
func live(dir string) bool {
	res := make(chan bool, 1)
	go func() {
		var st syscall.Statfs_t
		err := syscall.Statfs(dir, &st)
		res <- err == nil && st.Type == fuseMagic
	}()
	select {
	case ok := <-res:
		return ok
	case <-time.After(5 * time.Second):
		return false // the goroutine ends when the test kills casfs
	}
}

func (m *mount) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// path is p inside the mount.
func (m *mount) path(p ...string) string {
	return filepath.Join(append([]string{m.dir}, p...)...)
}

// waitExit waits for casfs to exit by itself and checks that it exited 0 and
// left nothing mounted.
func (m *mount) waitExit(why string) {
	m.t.Helper()
	select {
	case <-m.done:
	case <-time.After(exitTimeout):
		m.t.Fatalf("casfs mount still running %v after %s\n%s", exitTimeout, why, m.log)
	}
	m.checkExit(why)
}

func (m *mount) checkExit(why string) {
	m.t.Helper()
	m.checked = true
	if m.err != nil {
		m.t.Errorf("casfs mount after %s: %v, want exit 0\n%s", why, m.err, m.log)
	}
	if m.mounted() {
		m.t.Errorf("casfs mount exited after %s but %s is still mounted", why, m.dir)
	}
}

// stop sends SIGTERM, as a service manager would, and checks that casfs
// unmounts and exits 0.
func (m *mount) stop() {
	m.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		m.t.Fatalf("SIGTERM casfs: %v", err)
	}
	m.waitExit("SIGTERM")
}

// kill9 kills casfs the hard way, leaving a stale mount.
func (m *mount) kill9() {
	m.t.Helper()
	m.killed = true
	m.cmd.Process.Kill()
	select {
	case <-m.done:
	case <-time.After(exitTimeout):
		m.t.Fatalf("casfs did not die of SIGKILL within %v", exitTimeout)
	}
}

// cleanup runs when the test ends: whatever happened, nothing stays mounted
// and no casfs keeps running. A casfs that does not stop on SIGTERM in time
// fails the test.
func (m *mount) cleanup() {
	t := m.t
	if !m.exited() {
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
			m.checkExit("SIGTERM at the end of the test")
		case <-time.After(exitTimeout):
			t.Errorf("casfs mount did not exit within %v of SIGTERM; detaching %s and killing it", exitTimeout, m.dir)
			lazyUnmount(m.dir)
			m.cmd.Process.Kill()
			<-m.done
		}
	} else if !m.killed && !m.checked {
		m.checkExit("its end")
	}
	if m.mounted() {
		if !m.killed {
			t.Errorf("%s still mounted after casfs exited", m.dir)
		}
		lazyUnmount(m.dir)
	}
	if t.Failed() {
		t.Logf("casfs mount %s %s log:\n%s", m.store, m.dir, m.log)
	}
}

// lazyUnmount detaches dir however it can.
func lazyUnmount(dir string) {
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		exec.Command("fusermount3", "-uz", dir).Run()
	}
}

// isMounted reports whether dir is a casfs mount point, live or stale, from
// /proc/self/mountinfo: it never touches the mount, so a hung or dead
// server cannot block it.
func isMounted(dir string) bool {
	return mountType(dir) == "fuse.casfs"
}

// mountType returns the filesystem type of the mount on top at dir, or "" if
// dir is no mount point.
func mountType(dir string) (typ string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - type source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescapeMountinfo(fields[4]) != dir {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				typ = fields[i+1] // the last one listed is on top
			}
		}
	}
	return typ
}

// unescapeMountinfo undoes the octal escapes (\040 for space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
