package fs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/versions"
)

// requireFUSE skips without /dev/fuse, unless CASFS_REQUIRE_EXTERNAL is set
// (CI), where a missing kernel feature must fail rather than pass silently.
func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CASFS_REQUIRE_EXTERNAL") != "" {
			t.Fatalf("FUSE tests required but /dev/fuse is missing: %v", err)
		}
		t.Skipf("no /dev/fuse: %v", err)
	}
}

type testMount struct {
	dir   string // mountpoint
	store string
	repo  *versions.Repo
	fs    *FS
}

// mount makes a fresh store with small chunks (so small files span
// several), mounts it in a temp dir, and unmounts it when the test ends.
// The store is local, or with CASFS_TEST_STORE=rados (and -tags ceph) in a
// fresh namespace of the test Ceph cluster (see testStore).
func mount(t *testing.T) *testMount { return mountWith(t, nil) }

// mountLocal is mount on a local store whatever CASFS_TEST_STORE says, for
// tests that reach into the store's files.
func mountLocal(t *testing.T) *testMount { return mountStore(t, "", nil) }

// mountWith is mount with a chance to change the options first.
func mountWith(t *testing.T, edit func(*Options)) *testMount {
	return mountStore(t, testStore(t), edit)
}

// mountStore mounts a new store at loc, or a local one if loc is "".
func mountStore(t *testing.T, loc string, edit func(*Options)) *testMount {
	t.Helper()
	return mountChunkedAt(t, loc, chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10}, edit)
}

// mountChunked is mountWith over a store that cuts chunks with chunker.
func mountChunked(t *testing.T, chunker chunkstore.ChunkerConfig, edit func(*Options)) *testMount {
	t.Helper()
	return mountChunkedAt(t, testStore(t), chunker, edit)
}

// mountChunkedAt is mountStore with a chunker.
func mountChunkedAt(t *testing.T, loc string, chunker chunkstore.ChunkerConfig, edit func(*Options)) *testMount {
	t.Helper()
	requireFUSE(t)
	ctx := context.Background()
	base := t.TempDir()
	m := &testMount{dir: filepath.Join(base, "mnt"), store: filepath.Join(base, "store")}
	if loc != "" {
		m.store = loc
	}
	cfg := chunkstore.DefaultConfig()
	cfg.Chunker = chunker
	if err := versions.Init(ctx, m.store, cfg); err != nil {
		t.Fatal(err)
	}
	repo, err := versions.Open(ctx, m.store, versions.OpenOptions{Owner: "test " + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	m.repo = repo
	opts := Options{StagingDir: filepath.Join(base, "staging"), CacheBytes: 64 << 20}
	if edit != nil {
		edit(&opts)
	}
	m.fs, err = New(repo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// CASFS_TEST_FUSE_DEBUG=1 logs every FUSE request, to find races.
	debug := os.Getenv("CASFS_TEST_FUSE_DEBUG") != ""
	if debug {
		slog.SetLogLoggerLevel(slog.LevelDebug)
	}
	server, err := Mount(m.fs, m.dir, MountOptions{FsName: "casfs-test", Debug: debug})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			// A failed test may leave a file open, held by this very
			// process: the kernel would wait on it forever. Detach and
			// abort the connection so the test ends instead of hanging.
			t.Errorf("unmount: %v", err)
			abortConnection(t, m.dir)
			Unmount(m.dir, true)
		}
		server.Wait()
		if err := m.fs.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		m.fs.Close()
		repo.Close()
	})
	return m
}

// posixSkips are go-fuse posixtest cases casfs does not aim to pass, and why.
var posixSkips = map[string]string{
	// Two descriptors of one process never conflict on POSIX locks
	// (fcntl(2)); go-fuse's loopback passes only by turning them into OFD
	// locks on its backing files. casfs leaves locking to the kernel, which
	// enforces it between processes on the mount.
	"FcntlFlockLocksFile": "POSIX locks of one process do not conflict",
}

func TestPosix(t *testing.T) {
	for name, fn := range posixtest.All {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixSkips[name]; ok {
				t.Skip(why)
			}
			m := mount(t)
			fn(t, m.dir)
		})
	}
}

// abortConnection aborts the FUSE connection serving dir through fusectl.
func abortConnection(t *testing.T, dir string) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return
	}
	const ctl = "/sys/fs/fuse/connections"
	minor := unix.Minor(st.Dev)
	if _, err := os.Stat(fmt.Sprintf("%s/%d", ctl, minor)); err != nil {
		exec.Command("mount", "-t", "fusectl", "none", ctl).Run()
	}
	if err := os.WriteFile(fmt.Sprintf("%s/%d/abort", ctl, minor), []byte("1"), 0o200); err != nil {
		t.Logf("aborting the FUSE connection: %v", err)
	}
}
