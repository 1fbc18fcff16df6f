package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
)

// helperEnv makes the test binary, run as a child, hold a store's lock; see
// TestMain and TestLockOtherProcess.
const helperEnv = "CASFS_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		holdLock(dir)
		return
	}
	if dir := os.Getenv(packCrashChildEnv); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv("CASFS_TEST_CRASH_SEED"), 10, 64)
		crashChild(dir, seed, true)
		return
	}
	if dir := os.Getenv(crashChildEnv); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv("CASFS_TEST_CRASH_SEED"), 10, 64)
		crashChild(dir, seed, false)
		return
	}
	os.Exit(m.Run())
}

// holdLock opens the store in dir, says so on stdout and keeps it open until
// killed or stdin closes.
func holdLock(dir string) {
	s, err := Open(context.Background(), dir, Options{Owner: "lock helper"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	s.Close()
	os.Exit(0)
}

// newStore inits a store in a temp dir and returns the dir.
func newStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := Init(dir, chunkstore.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustOpen(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func reopen(t *testing.T, s chunkstore.Store) chunkstore.Store {
	t.Helper()
	var dir string
	switch s := s.(type) {
	case *Store:
		dir = s.Dir()
	default:
		// An Encoded store: its name is the inner one's.
		dir = strings.TrimPrefix(s.Properties().Name, "local:")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ls, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Store); ok {
		return ls
	}
	return encode(t, ls)
}

// encode wraps a local store the way casfs does, with compression taken from
// its config.
func encode(t *testing.T, ls *Store) chunkstore.Store {
	t.Helper()
	cfg := ls.Config()
	es, err := chunkstore.NewEncoded(ls, cfg.Hash, cfg.Compression)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestConformance(t *testing.T) {
	chunkstoretest.RunReopen(t, func(t *testing.T) chunkstore.Store {
		s, err := Open(context.Background(), newStore(t), Options{Owner: t.Name()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, reopen)
}

// TestConformanceEncoded runs the suite over the stack casfs uses, for each
// compression setting.
func TestConformanceEncoded(t *testing.T) {
	for _, comp := range []string{chunkstore.CompressionZstd, chunkstore.CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			chunkstoretest.RunReopen(t, func(t *testing.T) chunkstore.Store {
				cfg := chunkstore.DefaultConfig()
				cfg.Compression = comp
				dir := filepath.Join(t.TempDir(), "store")
				if err := Init(dir, cfg); err != nil {
					t.Fatal(err)
				}
				ls, err := Open(context.Background(), dir, Options{})
				if err != nil {
					t.Fatal(err)
				}
				return encode(t, ls)
			}, reopen)
		})
	}
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "store")
	cfg := chunkstore.DefaultConfig()
	if err := Init(dir, cfg); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{configName, lockName, chunksName, tmpName} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	s := mustOpen(t, dir, Options{})
	got := s.Config()
	if len(got.ID) != 32 {
		t.Errorf("store id %q: want 32 hex digits", got.ID)
	}
	cfg.ID = got.ID
	if got != cfg {
		t.Errorf("Config() = %+v, want %+v", got, cfg)
	}
	if !filepath.IsAbs(s.Dir()) || s.Properties().Name != "local:"+s.Dir() {
		t.Errorf("Dir() = %q, Name = %q", s.Dir(), s.Properties().Name)
	}
	s.Close()

	// Stores made with the same config still get distinct ids.
	other := newStore(t)
	if o := mustOpen(t, other, Options{}); o.Config().ID == got.ID {
		t.Errorf("two stores got the same id %s", got.ID)
	}

	err := Init(dir, cfg)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "already a casfs store") {
		t.Errorf("Init over a store: %v", err)
	}
}

func TestInitRefuses(t *testing.T) {
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "photo.jpg"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Init(nonEmpty, chunkstore.DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "photo.jpg") {
		t.Errorf("Init of a non-empty dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(nonEmpty, chunksName)); err == nil {
		t.Error("Init of a non-empty dir created chunks/ in it")
	}

	bad := chunkstore.DefaultConfig()
	bad.Hash = "md5"
	empty := t.TempDir()
	if err := Init(empty, bad); !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Errorf("Init with hash md5: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, configName)); err == nil {
		t.Error("Init with a bad config wrote one")
	}
}

// TestInitResumes checks that an Init interrupted before it wrote the config
// can be run again.
func TestInitResumes(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{chunksName, tmpName} {
		if err := os.Mkdir(filepath.Join(dir, name), dirMode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, lockName), nil, fileMode); err != nil {
		t.Fatal(err)
	}
	if err := Init(dir, chunkstore.DefaultConfig()); err != nil {
		t.Fatalf("Init over the skeleton of an interrupted Init: %v", err)
	}
	mustOpen(t, dir, Options{})
}

func TestOpenNoStore(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	empty := t.TempDir()
	file := filepath.Join(empty, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(t.TempDir(), "my store's dir")
	for dir, why := range map[string]string{
		missing: "does not exist",
		empty:   "no config file",
		file:    "not a directory",
		spaced:  "does not exist",
	} {
		_, err := Open(context.Background(), dir, Options{})
		if !errors.Is(err, ErrNoStore) {
			t.Errorf("Open(%s): %v; want ErrNoStore", dir, err)
			continue
		}
		msg := err.Error()
		hint := "`casfs init " + shellQuote(dir) + "`"
		if dir == file {
			hint = "a store is a directory" // init would fail on a file too
		}
		if !strings.Contains(msg, dir) || !strings.Contains(msg, why) || !strings.Contains(msg, hint) {
			t.Errorf("Open(%s): %q; want the dir, %q and %q", dir, msg, why, hint)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, lockName)); err == nil {
		t.Error("Open of a non-store created a lock file in it")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/cas":         "/srv/cas",
		"/my store's dir":  `'/my store'\''s dir'`,
		"/a$b":             "'/a$b'",
		"":                 "''",
		"relative/dir-1.0": "relative/dir-1.0",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOpenUnknownFormat(t *testing.T) {
	dir := newStore(t)
	cfgPath := filepath.Join(dir, configName)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["format"] = 99
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, b, fileMode); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), dir, Options{})
	if !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Fatalf("Open of a format-99 store: %v; want ErrUnknownFormat", err)
	}
	if msg := err.Error(); !strings.Contains(msg, cfgPath) || !strings.Contains(msg, "99") {
		t.Errorf("error %q does not name the config file and the format", msg)
	}

	if err := os.WriteFile(cfgPath, []byte("{garbage"), fileMode); err != nil {
		t.Fatal(err)
	}
	if _, err = Open(context.Background(), dir, Options{}); !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Errorf("Open with a garbled config: %v; want ErrUnknownFormat", err)
	}
}

func TestOpenCancelled(t *testing.T) {
	dir := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, dir, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}
}

func TestLockConflict(t *testing.T) {
	dir := newStore(t)
	const owner = "casfs mount on /mnt/cas"
	s := mustOpen(t, dir, Options{Owner: owner})

	host, _ := os.Hostname()
	for _, opts := range []Options{{}, {ReadOnly: true}} {
		_, err := Open(context.Background(), dir, opts)
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second Open (%+v) in the same process: %v; want ErrLocked", opts, err)
		}
		var le *LockedError
		if !errors.As(err, &le) || le.Holder == nil {
			t.Fatalf("error %v is not a *LockedError with a holder", err)
		}
		want := fmt.Sprintf("store %s is in use by %s (pid %d on host %s, since ", dir, owner, os.Getpid(), host)
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q\nwant prefix %q", err, want)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro := mustOpen(t, dir, Options{ReadOnly: true, Owner: "casfs ls"})
	_, err := Open(context.Background(), dir, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "casfs ls") || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Open beside a read-only open: %v", err)
	}
	ro.Close()
	mustOpen(t, dir, Options{})
}

// TestLockOtherProcess checks the lock against another process, and that
// the kernel releases it when that process is killed.
func TestLockOtherProcess(t *testing.T) {
	dir := newStore(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	_, err = Open(context.Background(), dir, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("lock helper (pid %d ", cmd.Process.Pid)) {
		t.Fatalf("Open while another process holds the store: %v", err)
	}

	// SIGKILL: the helper gets no chance to unlock.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	mustOpen(t, dir, Options{})
}

func TestSweepTemp(t *testing.T) {
	dir := newStore(t)
	tmpDir := filepath.Join(dir, tmpName)
	stale := []string{filepath.Join(tmpDir, "0123456789ab-1234"), filepath.Join(tmpDir, "somedir", "f")}
	for _, p := range stale {
		if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half a chunk"), fileMode); err != nil {
			t.Fatal(err)
		}
	}

	// A read-only open changes nothing.
	ro := mustOpen(t, dir, Options{ReadOnly: true})
	ro.Close()
	if _, err := os.Stat(stale[0]); err != nil {
		t.Errorf("read-only Open touched tmp/: %v", err)
	}

	mustOpen(t, dir, Options{})
	entries, err := os.ReadDir(tmpDir)
	if err != nil || len(entries) != 0 {
		t.Errorf("after Open, tmp/ holds %v (err %v); want it empty", entries, err)
	}
}

func TestReadOnly(t *testing.T) {
	dir := newStore(t)
	data := []byte("hello")
	id := chunkstore.HashBLAKE3.Sum(data)
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro := mustOpen(t, dir, Options{ReadOnly: true})
	other := []byte("other")
	if err := ro.Put(ctx, chunkstore.HashBLAKE3.Sum(other), other); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Put on a read-only store: %v", err)
	}
	if err := ro.Delete(ctx, id); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Delete on a read-only store: %v", err)
	}
	if got, err := ro.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get on a read-only store: %q, %v", got, err)
	}
}

// TestPutExistingNotRewritten checks that a second Put leaves the first file
// in place rather than writing and renaming a new one, whether the chunk is
// still pending or already has its name.
func TestPutExistingNotRewritten(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	data := chunkstoretest.TextBytes(1, 1000)
	id := chunkstore.HashBLAKE3.Sum(data)
	ctx := context.Background()
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if got := tempFiles(t, s); len(got) != 1 {
		t.Errorf("two Puts of a pending chunk left %d temp files, want 1", len(got))
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(s.path(id))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(s.path(id))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("second Put replaced the chunk file")
	}
}

// checkNoChunk checks that a failed Put left nothing: no chunk, no temp file
// of it, and nothing for a Sync to publish.
func checkNoChunk(t *testing.T, s *Store, id chunkstore.ID) {
	t.Helper()
	if ok, err := s.Has(context.Background(), id); ok || err != nil {
		t.Errorf("after a failed Put, Has = %v, %v", ok, err)
	}
	if _, err := os.Lstat(s.path(id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a failed Put, the chunk file: %v", err)
	}
	for _, name := range tempFiles(t, s) {
		if strings.HasPrefix(name, id.Str()+"-") {
			t.Errorf("after a failed Put, tmp/ holds %s", name)
		}
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Errorf("Sync after a failed Put: %v", err)
	}
	if _, err := os.Lstat(s.path(id)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a failed Put and a Sync, the chunk file: %v", err)
	}
}

// tempFiles lists tmp/.
func tempFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.dir, tmpName))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPutFailsCleanly(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	data := chunkstoretest.RandomBytes(1, 100<<10)
	id := chunkstore.HashBLAKE3.Sum(data)

	// tmp/ replaced by a file: no temp file can be made.
	tmpDir := filepath.Join(s.dir, tmpName)
	if err := os.Remove(tmpDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmpDir, nil, fileMode); err != nil {
		t.Fatal(err)
	}
	err := s.Put(context.Background(), id, data)
	if err == nil || !strings.Contains(err.Error(), s.dir) || !strings.Contains(err.Error(), id.Str()) {
		t.Errorf("Put with tmp/ a file: %v; want an error naming the store and chunk", err)
	}
	if ok, _ := s.Has(context.Background(), id); ok {
		t.Error("failed Put left a chunk")
	}
	if err := os.Remove(tmpDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(tmpDir, dirMode); err != nil {
		t.Fatal(err)
	}

	// chunks/ replaced by a file: Put cannot look for the chunk.
	chunksDir := filepath.Join(s.dir, chunksName)
	if err := os.Rename(chunksDir, chunksDir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(chunksDir, nil, fileMode); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), id, data); err == nil {
		t.Error("Put with chunks/ a file succeeded")
	}
	if err := os.Remove(chunksDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(chunksDir+".away", chunksDir); err != nil {
		t.Fatal(err)
	}
	checkNoChunk(t, s, id)
}

// TestPutDiskFull injects ENOSPC into the write of a temp file.
func TestPutDiskFull(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	orig := writeData
	t.Cleanup(func() { writeData = orig })
	writeData = func(f *os.File, data []byte) error {
		// Write half, as a filling disk does, then fail.
		if _, err := f.Write(data[:len(data)/2]); err != nil {
			return err
		}
		return &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	data := chunkstoretest.RandomBytes(2, 100<<10)
	id := chunkstore.HashBLAKE3.Sum(data)
	err := s.Put(context.Background(), id, data)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk: %v; want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "store "+s.dir) {
		t.Errorf("error %q does not name the store", err)
	}
	checkNoChunk(t, s, id)
}

// TestPutDiskFullTmpfs fills a real, small tmpfs. It needs to mount one,
// which only root can do; TestPutDiskFull covers the same path by injection.
func TestPutDiskFullTmpfs(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v); TestPutDiskFull covers ENOSPC by injection", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	dir := filepath.Join(mnt, "store")
	if err := Init(dir, chunkstore.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()
	var stored [][]byte
	for i := range 100 {
		data := chunkstoretest.RandomBytes(uint64(i), 60<<10)
		id := chunkstore.HashBLAKE3.Sum(data)
		err := s.Put(ctx, id, data)
		if err == nil {
			stored = append(stored, data)
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("Put %d on a full tmpfs: %v; want ENOSPC naming the store", i, err)
		}
		checkNoChunk(t, s, id)
		break
	}
	if len(stored) == 0 || len(stored) == 100 {
		t.Fatalf("stored %d chunks of 60 KiB on a 512 KiB tmpfs", len(stored))
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync on a full tmpfs: %v", err)
	}
	for _, data := range stored {
		got, err := s.Get(ctx, chunkstore.HashBLAKE3.Sum(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("chunk stored before the disk filled: %v", err)
		}
	}
}

func TestListSkipsStrays(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	data := []byte("real chunk")
	id := chunkstore.HashBLAKE3.Sum(data)
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	other := chunkstore.HashBLAKE3.Sum([]byte("other")).String()
	h := id.String()
	root := filepath.Join(s.dir, chunksName)
	for _, p := range []string{
		filepath.Join(root, "README"),
		filepath.Join(root, "zz", "00", other),
		filepath.Join(root, h[0:2], h[2:4], h+".bak"),
		filepath.Join(root, h[0:2], h[2:4], strings.ToUpper(h)),
		filepath.Join(root, h[0:2], h[2:4], other), // wrong shard
		filepath.Join(root, h[0:2], h[2:4], "x"+other[1:]),
	} {
		if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("stray"), fileMode); err != nil {
			t.Fatal(err)
		}
	}
	var got []chunkstore.Info
	if err := s.List(context.Background(), func(i chunkstore.Info) error {
		got = append(got, i)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id || got[0].Size != int64(len(data)) {
		t.Errorf("List = %v; want only %s of size %d", got, id.Str(), len(data))
	}
}

// TestCorruptOnDisk damages a chunk file under the Encoded layer: Get must
// report which chunk and where, and return no data.
func TestCorruptOnDisk(t *testing.T) {
	ls := mustOpen(t, newStore(t), Options{})
	s := encode(t, ls)
	data := chunkstoretest.TextBytes(3, 200<<10)
	id := chunkstore.HashBLAKE3.Sum(data)
	ctx := context.Background()
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	p := ls.path(id)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(p, b, fileMode); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, id)
	var ce *chunkstore.CorruptError
	if !errors.As(err, &ce) || ce.ID != id || ce.Where != "local:"+ls.Dir() {
		t.Fatalf("Get of a damaged chunk: %v; want a CorruptError for %s at local:%s", err, id.Str(), ls.Dir())
	}
	if got != nil {
		t.Error("Get of a damaged chunk returned data")
	}
}
