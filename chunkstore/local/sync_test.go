package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
)

// testChunk returns chunk i of a test: pseudo-random bytes of 1 to ~100 KiB
// and their ID.
func testChunk(seed uint64) (chunkstore.ID, []byte) {
	data := chunkstoretest.RandomBytes(seed, 1+int(seed*7919%(100<<10)))
	return chunkstore.HashBLAKE3.Sum(data), data
}

func put(t *testing.T, s chunkstore.Store, seed uint64) chunkstore.ID {
	t.Helper()
	id, data := testChunk(seed)
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id
}

// named reports whether chunk id is under its chunk name.
func named(t *testing.T, s *Store, id chunkstore.ID) bool {
	t.Helper()
	_, err := os.Lstat(s.path(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestSyncPublishes follows chunks through the two states: pending (a temp
// file, seen by Has, Get and List) and, after Sync, under its name.
func TestSyncPublishes(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	ctx := context.Background()
	var ids []chunkstore.ID
	for i := range 5 {
		ids = append(ids, put(t, s, uint64(i)))
	}
	if got := tempFiles(t, s); len(got) != len(ids) {
		t.Errorf("%d Puts left %d temp files", len(ids), len(got))
	}
	listed := map[chunkstore.ID]bool{}
	if err := s.List(ctx, func(i chunkstore.Info) error { listed[i.ID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if named(t, s, id) {
			t.Errorf("chunk %s has its name before any Sync", id.Str())
		}
		if ok, err := s.Has(ctx, id); !ok || err != nil {
			t.Errorf("Has of a pending chunk: %v, %v", ok, err)
		}
		if !listed[id] {
			t.Errorf("List did not report pending chunk %s", id.Str())
		}
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if !named(t, s, id) {
			t.Errorf("chunk %s has no name after Sync", id.Str())
		}
		_, want := testChunk(uint64(i))
		if got, err := s.Get(ctx, id); err != nil || string(got) != string(want) {
			t.Errorf("Get after Sync: %d bytes, %v", len(got), err)
		}
	}
	if got := tempFiles(t, s); len(got) != 0 {
		t.Errorf("after Sync, tmp/ holds %v", got)
	}
}

// TestDeletePending deletes a chunk that is still a temp file: it is gone
// at once and a later Sync does not bring it back.
func TestDeletePending(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	ctx := context.Background()
	id := put(t, s, 1)
	keep := put(t, s, 2)
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, id); ok {
		t.Error("Has after Delete of a pending chunk")
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if named(t, s, id) {
		t.Error("Sync published a deleted chunk")
	}
	if !named(t, s, keep) {
		t.Error("Sync did not publish the chunk put beside the deleted one")
	}
	if err := s.Delete(ctx, id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	if got := tempFiles(t, s); len(got) != 0 {
		t.Errorf("tmp/ holds %v", got)
	}
}

// TestMaxPending checks that a long commit does not pile up pending chunks
// without bound: Put syncs them itself.
func TestMaxPending(t *testing.T) {
	orig := maxPending
	t.Cleanup(func() { maxPending = orig })
	maxPending = 4
	s := mustOpen(t, newStore(t), Options{})
	var ids []chunkstore.ID
	for i := range 10 {
		ids = append(ids, put(t, s, uint64(i)))
		if n := len(tempFiles(t, s)); n >= maxPending {
			t.Fatalf("after Put %d, %d chunks are pending", i, n)
		}
	}
	if !named(t, s, ids[0]) {
		t.Error("the first chunks were not synced by Put")
	}
}

// TestDropsWrittenPages checks that Put drops a chunk it wrote 64 Puts
// earlier from the page cache once it is written back (synced here, so that
// its pages are clean for sure), and that the chunk still reads back.
func TestDropsWrittenPages(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	var st unix.Statfs_t
	if err := unix.Statfs(s.Dir(), &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		t.Skip("tmpfs pages are the file itself and cannot be dropped")
	}
	ctx := context.Background()
	first, data := testChunk(7)
	if err := s.Put(ctx, first, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := residentPages(t, s.path(first)); n == 0 {
		t.Skip("the chunk just written is not in the page cache; nothing to see")
	}
	for i := range len(s.drops.ids) {
		put(t, s, uint64(100+i))
	}
	if n := residentPages(t, s.path(first)); n != 0 {
		t.Errorf("%d pages of the chunk written 64 Puts ago are still cached", n)
	}
	if got, err := s.Get(ctx, first); err != nil || string(got) != string(data) {
		t.Errorf("Get of the dropped chunk: %d bytes, %v", len(got), err)
	}
}

// residentPages counts the pages of the file at path that are in the page
// cache (mincore of a mapping).
func residentPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestSyncFailureSticks makes the filesystem sync fail, first the one
// before the renames, then the one after: Sync fails, and keeps failing
// until the store is reopened, and no chunk gets a name before its data is
// known durable.
func TestSyncFailureSticks(t *testing.T) {
	for _, failAt := range []int{1, 2} {
		t.Run(fmt.Sprintf("sync %d fails", failAt), func(t *testing.T) {
			dir := newStore(t)
			s := mustOpen(t, dir, Options{})
			ctx := context.Background()
			if err := s.Sync(ctx); err != nil { // the first Sync always syncs
				t.Fatal(err)
			}
			calls := 0
			orig := syncFilesystem
			t.Cleanup(func() { syncFilesystem = orig })
			syncFilesystem = func(f *os.File) error {
				calls++
				if calls == failAt {
					return &fs.PathError{Op: "syncfs", Path: filepath.Dir(f.Name()), Err: syscall.EIO}
				}
				return orig(f)
			}
			a := put(t, s, 1)
			err := s.Sync(ctx)
			if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Sync with syncfs failing: %v; want EIO naming the store", err)
			}
			if failAt == 1 && named(t, s, a) {
				t.Fatal("a chunk got its name although syncing its data failed")
			}
			b := put(t, s, 2)
			if err := s.Sync(ctx); !errors.Is(err, syscall.EIO) {
				t.Errorf("Sync after a failed Sync: %v; want the same EIO", err)
			}
			if named(t, s, b) {
				t.Error("a Sync after a failed one published a chunk")
			}
			if err := s.Close(); !errors.Is(err, syscall.EIO) {
				t.Errorf("Close after a failed Sync: %v", err)
			}
			syncFilesystem = orig

			s = mustOpen(t, dir, Options{})
			if ok, _ := s.Has(ctx, b); ok {
				t.Error("after reopening, Has reports a chunk no Sync made durable")
			}
			if ok, _ := s.Has(ctx, a); ok != (failAt == 2) {
				t.Errorf("after reopening, Has(first chunk) = %v", ok)
			}
			if got := tempFiles(t, s); len(got) != 0 {
				t.Errorf("after reopening, tmp/ holds %v", got)
			}
			if err := s.Sync(ctx); err != nil {
				t.Errorf("Sync after reopening: %v", err)
			}
		})
	}
}

// TestSyncRenameFails: a rename that fails leaves its chunk pending, and
// the next Sync publishes it. Nothing is lost, so the failure does not stick.
func TestSyncRenameFails(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	ctx := context.Background()
	id := put(t, s, 1)
	orig := renameFile
	t.Cleanup(func() { renameFile = orig })
	renameFile = func(from, to string) error {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.ENOSPC}
	}
	if err := s.Sync(ctx); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync with rename failing: %v", err)
	}
	if ok, _ := s.Has(ctx, id); !ok || named(t, s, id) {
		t.Fatal("after a failed rename the chunk is not pending")
	}
	renameFile = orig
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync once renames work again: %v", err)
	}
	if !named(t, s, id) {
		t.Error("the chunk was not published by the next Sync")
	}
}

// TestSyncContext: a Sync waiting for another honours its context, and one
// cancelled before its renames leaves the chunks pending.
func TestSyncContext(t *testing.T) {
	s := mustOpen(t, newStore(t), Options{})
	id := put(t, s, 1)

	s.syncSem <- struct{}{} // a Sync in progress
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := s.Sync(ctx)
	cancel()
	<-s.syncSem
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync waiting behind another: %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	orig := syncFilesystem
	t.Cleanup(func() { syncFilesystem = orig })
	syncFilesystem = func(f *os.File) error { cancel(); return orig(f) }
	if err := s.Sync(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync cancelled during its data sync: %v", err)
	}
	syncFilesystem = orig
	if named(t, s, id) {
		t.Fatal("a cancelled Sync renamed")
	}
	if err := s.Sync(context.Background()); err != nil || !named(t, s, id) {
		t.Fatalf("Sync after a cancelled one: %v, named %v", err, named(t, s, id))
	}
}

// diskModel watches the store's writes, syncs and renames and checks the
// rule crash safety rests on, without crashing anything: a chunk name may
// only appear for a file whose data a sync already covered (a journal may
// commit a rename at any moment, so a rename before that would let a crash
// leave a name over missing data); and once Sync returns, the names of the
// chunks put before it are covered by a sync too.
type diskModel struct {
	t        *testing.T
	mu       sync.Mutex
	clock    int
	written  map[string]int // temp file → when its write finished
	renamed  map[string]int // chunk file → when it was renamed into place
	fsynced  map[string]int // file or directory → when its last fsync began
	syncedFS int            // when the last syncfs began
}

func watchDisk(t *testing.T) *diskModel {
	m := &diskModel{t: t, written: map[string]int{}, renamed: map[string]int{}, fsynced: map[string]int{}, syncedFS: -1}
	origWrite, origRename, origFS, origPath := writeData, renameFile, syncFilesystem, syncPath
	t.Cleanup(func() {
		writeData, renameFile, syncFilesystem, syncPath = origWrite, origRename, origFS, origPath
	})
	writeData = func(f *os.File, data []byte) error {
		err := origWrite(f, data)
		m.mu.Lock()
		m.clock++
		m.written[f.Name()] = m.clock
		m.mu.Unlock()
		return err
	}
	syncFilesystem = func(f *os.File) error {
		m.mu.Lock()
		m.clock++
		m.syncedFS = m.clock
		m.mu.Unlock()
		return origFS(f)
	}
	syncPath = func(p string) error {
		m.mu.Lock()
		m.clock++
		m.fsynced[p] = m.clock
		m.mu.Unlock()
		return origPath(p)
	}
	renameFile = func(from, to string) error {
		m.mu.Lock()
		w, ok := m.written[from]
		if !ok || !(m.syncedFS > w || m.fsynced[from] > w) {
			m.t.Errorf("%s renamed to its chunk name before a sync covered its data", from)
		}
		m.mu.Unlock()
		if err := origRename(from, to); err != nil {
			return err
		}
		m.mu.Lock()
		m.clock++
		m.renamed[to] = m.clock
		m.mu.Unlock()
		return nil
	}
	return m
}

// checkDurable checks, after a Sync returned, that each of the chunk
// files paths is covered: renamed before a sync of the filesystem or of the
// path to it began.
func (m *diskModel) checkDurable(paths []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range paths {
		r, ok := m.renamed[p]
		if !ok {
			m.t.Errorf("%s: Sync returned, the chunk was never renamed into place", p)
			continue
		}
		shard := filepath.Dir(p)
		if m.syncedFS > r {
			continue
		}
		for _, d := range []string{shard, filepath.Dir(shard), filepath.Dir(filepath.Dir(shard))} {
			if m.fsynced[d] <= r {
				m.t.Errorf("%s: Sync returned, %s was not synced after the chunk was renamed", p, d)
			}
		}
	}
}

// TestSyncOrdering runs concurrent commits (Puts then a Sync, some chunks
// shared, a collector deleting its own) through the disk model, with
// syncfs and with the per-file fallback of kernels before 5.8.
func TestSyncOrdering(t *testing.T) {
	for _, mode := range []string{"syncfs", "fsync per file"} {
		t.Run(mode, func(t *testing.T) {
			if mode != "syncfs" {
				orig := syncfsReportsErrors
				t.Cleanup(func() { syncfsReportsErrors = orig })
				syncfsReportsErrors = func() bool { return false }
			}
			m := watchDisk(t)
			s := mustOpen(t, newStore(t), Options{})
			ctx := context.Background()
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for r := range 5 {
						var paths []string
						for i := range 4 {
							seed := uint64(1000*w + 10*r + i)
							if i == 3 {
								seed = uint64(r) // shared with the other workers
							}
							id, data := testChunk(seed)
							if err := s.Put(ctx, id, data); err != nil {
								t.Errorf("Put: %v", err)
								return
							}
							paths = append(paths, s.path(id))
						}
						if err := s.Sync(ctx); err != nil {
							t.Errorf("Sync: %v", err)
							return
						}
						m.checkDurable(paths)
					}
				})
			}
			wg.Go(func() {
				for i := range 10 {
					id, data := testChunk(uint64(100000 + i))
					if err := s.Put(ctx, id, data); err != nil {
						t.Errorf("Put: %v", err)
						return
					}
					if i%2 == 0 {
						if err := s.Sync(ctx); err != nil {
							t.Errorf("Sync: %v", err)
							return
						}
					}
					if err := s.Delete(ctx, id); err != nil {
						t.Errorf("Delete: %v", err)
						return
					}
				}
			})
			wg.Wait()
		})
	}
}

// crashChildEnv makes the test binary, run as a child, put and sync chunks
// into the store it names until it is killed; see TestCrashKill.
const crashChildEnv = "CASFS_TEST_CRASH_CHILD"

// crashChild puts chunks seed, seed+1, ... into the store in dir through the
// Encoded layer, syncing every few, and prints "synced N" once every chunk
// before seed N is synced. With packs (TestPackCrashKill) it uses small
// packs and deletes every seventh chunk right after putting it. It never
// returns: the test kills it.
func crashChild(dir string, seed uint64, packs bool) {
	ctx := context.Background()
	if packs {
		packLimit = 1 << 20 // cross packs often
	}
	ls, err := OpenDir(ctx, dir, Options{Owner: "crash child"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	s, err := chunkstore.NewEncoded(ls, chunkstore.HashBLAKE3, chunkstore.CompressionNone)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for i := seed; ; i++ {
		id, data := testChunk(i)
		err := s.Put(ctx, id, data)
		if err == nil && packs && i%7 == 3 {
			// Deletes too: a crash must not leave an index entry over
			// a punched record.
			err = s.Delete(ctx, id)
		}
		if err == nil && i%5 == 4 {
			if err = s.Sync(ctx); err == nil {
				fmt.Fprintf(out, "synced %d\n", i+1)
				out.Flush()
			}
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
}

// killChildAfter starts this test binary as a child that puts and syncs
// chunks into the store in dir from seed on (env names which child), and
// kills it once it has reported want chunks synced and then slept for
// pause: sometimes mid-Put, sometimes mid-Sync. It returns how many the
// child reported synced: chunks seed up to that.
func killChildAfter(t *testing.T, env, dir string, seed, want uint64, pause time.Duration) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+dir, fmt.Sprintf("CASFS_TEST_CRASH_SEED=%d", seed))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var synced uint64
	for lines.Scan() {
		line := lines.Text()
		n, err := strconv.ParseUint(strings.TrimPrefix(line, "synced "), 10, 64)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q", line)
		}
		synced = n
		if n-seed >= want {
			time.Sleep(pause)
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return synced
}

// TestCrashKill kills a process that is putting and syncing chunks, at a
// different moment each round, and reopens the store: every chunk it
// reported synced reads back and verifies, Has never reports a chunk that
// does not, and no temp file survives. (A SIGKILL keeps the page cache, so
// this checks what a process crash leaves; what a power cut leaves rests
// on the ordering TestSyncOrdering checks.)
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := newStore(t)
	ctx := context.Background()
	for round := range 4 {
		seed := uint64(round) * 100000
		synced := killChildAfter(t, crashChildEnv, dir, seed, uint64(10+5*round),
			time.Duration(round)*700*time.Microsecond)

		ls, err := Open(ctx, dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := encode(t, ls)
		if got := tempFiles(t, ls); len(got) != 0 {
			t.Errorf("round %d: after reopening, tmp/ holds %d files", round, len(got))
		}
		// Everything reported synced is there; whatever else Has
		// reports (chunks of a Sync the kill interrupted) verifies too.
		for i := seed; i < synced+50; i++ {
			id, data := testChunk(i)
			ok, err := s.Has(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if i < synced {
					t.Errorf("round %d: chunk %d was synced and is missing", round, i)
				}
				continue
			}
			got, err := s.Get(ctx, id)
			if err != nil || string(got) != string(data) {
				t.Errorf("round %d: chunk %d: Has says yes, Get gives %d bytes, %v", round, i, len(got), err)
			}
		}
		if err := s.List(ctx, func(info chunkstore.Info) error {
			_, err := s.Get(ctx, info.ID)
			return err
		}); err != nil {
			t.Errorf("round %d: a listed chunk does not read back: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKickFailureReachesSync: a background syncfs (kickWriteback) that sees
// a writeback error has taken it from the store's descriptor, so the next
// Sync must fail with it, publish nothing, and keep failing; and kicks do
// run while chunks are put, before any Sync.
func TestKickFailureReachesSync(t *testing.T) {
	if !syncfsReportsErrors() {
		t.Skip("no background syncfs before Linux 5.8")
	}
	origEvery, origFS := kickEvery, syncFilesystem
	t.Cleanup(func() { kickEvery, syncFilesystem = origEvery, origFS })
	kickEvery = 1
	dir := newStore(t)
	s := mustOpen(t, dir, Options{})
	ctx := context.Background()
	if err := s.Sync(ctx); err != nil { // the first Sync always syncs
		t.Fatal(err)
	}

	var mu sync.Mutex
	kicks, fail := 0, false
	syncFilesystem = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		kicks++
		if fail {
			fail = false // once: the error is the kick's alone
			return &fs.PathError{Op: "syncfs", Path: filepath.Dir(f.Name()), Err: syscall.EIO}
		}
		return origFS(f)
	}
	a := put(t, s, 1)
	s.kicks.Wait()
	mu.Lock()
	if kicks == 0 {
		t.Error("putting a chunk past kickEvery started no background syncfs")
	}
	fail = true
	mu.Unlock()
	b := put(t, s, 2)
	s.kicks.Wait()
	mu.Lock()
	if fail {
		mu.Unlock()
		t.Fatal("no background syncfs ran for the second chunk")
	}
	mu.Unlock()
	// The kick's syncfs failed; the Sync's own succeeds, as on a kernel
	// that reports an error to a descriptor once.
	if err := s.Sync(ctx); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Sync after a failed background syncfs: %v; want EIO naming the store", err)
	}
	if named(t, s, a) || named(t, s, b) {
		t.Error("a chunk got its name although a syncfs since its write failed")
	}
	if err := s.Sync(ctx); !errors.Is(err, syscall.EIO) {
		t.Errorf("second Sync: %v; want the same EIO", err)
	}
	if err := s.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("Close: %v; want the EIO", err)
	}
}
