package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
)

// pendingChunk is a chunk that Put has written to a temp file but that no
// Sync has moved to its final name yet.
type pendingChunk struct {
	tmp  string // path of the temp file in tmp/
	size int64
}

// batcher is the state behind the store's durability barrier; see "Crash
// safety" in the package documentation. Lock order: syncSem, then mu.
type batcher struct {
	mu      sync.Mutex
	pending map[chunkstore.ID]pendingChunk // guarded by mu

	// syncSem lets one Sync run at a time.
	syncSem syncGate
	// Guarded by holding syncSem:
	//
	// synced is false until a Sync of this Store has succeeded. Until
	// then, names a process that was killed earlier renamed into place
	// may not be durable yet, so even a Sync with nothing pending has to
	// sync the filesystem once.
	synced bool
	// failed is the error of a Sync that failed after it started making
	// things durable. What that Sync left durable is unknown (and after a
	// failed fsync the kernel may have dropped the dirty pages), so every
	// later Sync fails with it; reopening the store sweeps temp files and
	// starts afresh.
	failed error

	// Background writeback (see kickWriteback): bytes put since the last
	// kick, whether a kick's syncfs is running, and the first error one
	// returned, which every later Sync returns (the syncfs that saw a
	// writeback error consumed it: the next one on the same descriptor
	// would not report it again).
	unkicked atomic.Int64
	kicking  atomic.Bool
	kicks    sync.WaitGroup
	kickErr  atomic.Pointer[error]
	// fsMu is held around every syncfs of the store's descriptor, so that
	// a Sync's syncfs comes after a running kick has recorded its error.
	fsMu sync.Mutex
}

func newBatcher() batcher {
	return batcher{pending: map[chunkstore.ID]pendingChunk{}, syncSem: make(syncGate, 1)}
}

// maxPending is how many chunks Put lets pile up before it syncs them
// itself, which bounds the pending set's memory and tmp/'s size however
// long a single commit is. It is a variable so tests can make it small.
var maxPending = 1 << 14

// lookupPending returns id's pending chunk, if it is one.
func (s *Store) lookupPending(id chunkstore.ID) (pendingChunk, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc, ok := s.pending[id]
	return pc, ok
}

// addPending records a temp file as chunk id and reports whether it did:
// false if a concurrent Put of the same id got there first (then the caller
// removes its temp file). It also returns how many chunks are pending.
func (s *Store) addPending(id chunkstore.ID, pc pendingChunk) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[id]; ok {
		return false, len(s.pending)
	}
	s.pending[id] = pc
	return true, len(s.pending)
}

// Sync makes durable every chunk Put stored before Sync was called: it
// syncs the filesystem (the temp files' data), renames the temp files to
// their chunk names, and syncs the filesystem again (the names). A chunk
// name therefore only ever appears for bytes that are already durable.
//
// One Sync runs at a time; a Sync that had to wait for another usually
// finds everything done and returns at once, so concurrent commits share
// the cost. If ctx is done before the renames start, Sync returns with
// nothing renamed and no harm done; once they have started, it finishes.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return nil
	}
	return s.syncSem.do(ctx, func() error { return s.syncHeld(ctx) })
}

// syncSoon is Put's Sync when too many chunks are pending: it syncs unless
// a Sync is running already, which will deal with most of them.
func (s *Store) syncSoon(ctx context.Context) error {
	return s.syncSem.try(func() error { return s.syncHeld(ctx) })
}

// syncGate lets one Sync of a store run at a time: a channel rather than a
// mutex, so that a Sync waiting for another one honours its context.
type syncGate chan struct{}

// do runs fn once no other fn of g is running, unless ctx is done first.
func (g syncGate) do(ctx context.Context, fn func() error) error {
	select {
	case g <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g }()
	return fn()
}

// try runs fn unless another fn of g is running, and then does nothing.
func (g syncGate) try(fn func() error) error {
	select {
	case g <- struct{}{}:
	default:
		return nil
	}
	defer func() { <-g }()
	return fn()
}

// syncHeld is Sync with syncSem held.
func (s *Store) syncHeld(ctx context.Context) error {
	if s.failed != nil {
		return s.failed
	}
	s.mu.Lock()
	batch := make(map[chunkstore.ID]pendingChunk, len(s.pending))
	for id, pc := range s.pending {
		batch[id] = pc
	}
	s.mu.Unlock()
	if len(batch) == 0 && s.synced {
		return nil
	}
	if err := s.syncData(batch); err != nil {
		s.failed = fmt.Errorf("store %s: sync: %w (reopen the store to go on)", s.dir, err)
		return s.failed
	}
	if err := ctx.Err(); err != nil {
		// Nothing renamed: the batch stays pending, its data durable.
		return err
	}
	var renameErr error
	dirs := map[string]bool{}
	for id, pc := range batch {
		if err := s.publish(id, pc, dirs); err != nil {
			// This chunk stays pending; the next Sync tries it again.
			renameErr = fmt.Errorf("store %s: sync: chunk %s: %w", s.dir, id.Str(), err)
			break
		}
	}
	if err := s.syncNames(dirs); err != nil {
		s.failed = fmt.Errorf("store %s: sync: %w (reopen the store to go on)", s.dir, err)
		return s.failed
	}
	if renameErr != nil {
		return renameErr
	}
	s.synced = true
	return nil
}

// publish renames chunk id's temp file to its chunk name, unless a Delete
// or an earlier Sync took it out of the pending set meanwhile, and adds the
// directory it renamed into to dirs. The rename and the removal from the set
// happen under mu, so to the other methods a chunk is at any moment either
// pending at its temp name or not pending and at its chunk name: Has and Get
// look in the pending set first.
func (s *Store) publish(id chunkstore.ID, pc pendingChunk, dirs map[string]bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.pending[id]; !ok || cur.tmp != pc.tmp {
		return nil
	}
	p := s.path(id)
	err := renameFile(pc.tmp, p)
	if errors.Is(err, fs.ErrNotExist) {
		// Put made the shard; someone has removed it since.
		if err = s.mkShard(id); err == nil {
			err = renameFile(pc.tmp, p)
		}
	}
	if err != nil {
		return err
	}
	dirs[filepath.Dir(p)] = true
	delete(s.pending, id)
	return nil
}

// syncData makes the batch's temp files durable, data and size, so that
// the renames that follow never expose a short file.
//
// One syncfs(2) of the store's filesystem does that for any number of files
// with one journal commit and one cache flush, where an fsync per file (what
// Put used to do) costs a journal commit each; the writeback Put started
// (see startWriteback) has usually written most of the data by then. The
// price is that syncfs also writes back other programs' dirty data on the
// same filesystem. Before Linux 5.8 syncfs did not report writeback errors,
// so on older kernels the batch's files are fsynced one by one instead.
func (s *Store) syncData(batch map[chunkstore.ID]pendingChunk) error {
	if !syncfsReportsErrors() {
		paths := make([]string, 0, len(batch))
		for _, pc := range batch {
			paths = append(paths, pc.tmp)
		}
		return syncAll(paths)
	}
	return s.syncFS()
}

// syncNames makes durable the renames of a Sync into the shard directories
// dirs, and those directories themselves.
func (s *Store) syncNames(dirs map[string]bool) error {
	if !syncfsReportsErrors() {
		if !s.synced {
			// Names an earlier process renamed into place just before
			// it was killed may not be durable, and could be anywhere:
			// sync(2) is the one call that covers them. (It reports no
			// errors, but they would be that process's, and nothing
			// of this one's depends on them yet.)
			unix.Sync()
		}
		// A shard directory, and the level above it, may be new, made by
		// this Store's Puts or by an earlier process that crashed before
		// syncing: sync the whole path to each.
		paths := []string{filepath.Join(s.dir, chunksName)}
		l1 := map[string]bool{}
		for d := range dirs {
			paths = append(paths, d)
			l1[filepath.Dir(d)] = true
		}
		for d := range l1 {
			paths = append(paths, d)
		}
		return syncAll(paths)
	}
	return s.syncFS()
}

// syncFS syncs the store's filesystem through its long-lived descriptor and
// returns the error, or the first error a background kick saw (and so took
// from this descriptor) if there was one.
func (s *Store) syncFS() error {
	s.fsMu.Lock()
	defer s.fsMu.Unlock()
	err := syncFilesystem(s.lock)
	if p := s.kickErr.Load(); p != nil {
		return *p
	}
	return err
}

// syncAll fsyncs the files or directories at paths, a few at a time: each
// fsync waits for a journal commit, and commits overlap.
func syncAll(paths []string) error {
	var g errgroup.Group
	g.SetLimit(16)
	for _, p := range paths {
		g.Go(func() error { return syncPath(p) })
	}
	return g.Wait()
}

// Seams for the tests' fault injection and crash-ordering checks.
var (
	renameFile     = os.Rename
	syncFilesystem = syncfs
	syncPath       = syncFile
)

// syncfs syncs the filesystem f is on. The Store passes its lock file,
// open from Open to Close, rather than a descriptor opened for the call:
// syncfs reports a writeback error to each descriptor once, and one opened
// after another program's syncfs had seen the error would never hear of it.
func syncfs(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return &fs.PathError{Op: "syncfs", Path: filepath.Dir(f.Name()), Err: serr}
	}
	return nil
}

// kickEvery is how many bytes Put writes between background syncfs calls.
// It is a variable so tests can make it small.
var kickEvery int64 = 16 << 20

// kickWriteback counts n bytes just put and, every kickEvery bytes, starts
// a syncfs in the background unless one is running: the data of a long
// commit is then mostly on disk, its journal work done, by the time its Sync
// comes, instead of all of it waiting for that Sync. (The writeback each Put
// starts for its file is only a hint the kernel may queue behind others.)
// It promises nothing: only Sync makes chunks durable; an error here is kept
// for the next Sync to return.
func (s *Store) kickWriteback(n int) {
	if !syncfsReportsErrors() || s.unkicked.Add(int64(n)) < kickEvery || !s.kicking.CompareAndSwap(false, true) {
		return
	}
	s.unkicked.Store(0)
	s.kicks.Add(1)
	go func() {
		defer s.kicks.Done()
		defer s.kicking.Store(false)
		s.fsMu.Lock()
		defer s.fsMu.Unlock()
		if err := syncFilesystem(s.lock); err != nil {
			s.kickErr.CompareAndSwap(nil, &err)
		}
	}()
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncfsReportsErrors reports whether this kernel's syncfs(2) returns
// writeback errors (Linux 5.8 and later). Before that it always returned
// 0, so a failed write could go unnoticed.
var syncfsReportsErrors = sync.OnceValue(func() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 8
})

// dropRing remembers the chunks Put wrote last; see dropLater.
type dropRing struct {
	mu  sync.Mutex
	ids [64]chunkstore.ID
	n   int // chunks pushed, ever
}

// dropLater notes that chunk id was just written, and drops from the page
// cache the pages of the chunk written 64 Puts ago. By then its writeback
// (see startWriteback) has usually finished; only clean pages can be
// dropped, so doing it at once would do nothing.
//
// A large put would otherwise fill the page cache with chunks no one is
// about to read, evicting what others use, and keep taking fresh pages for
// it, which costs: on this project's 2-core virtual machine, writing 1 GiB
// into fresh page cache took 1.0-1.9 s of system time against 0.45 s into
// recycled pages, and putting 1 GiB of new data took 1.3-1.6 s of system
// time with the drop against 2.5-3.0 s without. A chunk read later comes
// from the disk instead.
func (s *Store) dropLater(id chunkstore.ID) {
	r := &s.drops
	r.mu.Lock()
	i := r.n % len(r.ids)
	old, full := r.ids[i], r.n >= len(r.ids)
	r.ids[i] = id
	r.n++
	r.mu.Unlock()
	if !full {
		return
	}
	p := s.path(old)
	if pc, ok := s.lookupPending(old); ok {
		p = pc.tmp
	}
	// A hint: if the file was renamed or deleted meanwhile, or a call
	// fails, the pages merely stay cached.
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED)
	})
}

// startWriteback asks the kernel to start writing f's data to disk now,
// without waiting for it. It is only a hint (durability comes from Sync),
// so its error is of no use: Sync's syncfs reports a failed write.
// Started early, the writeback of a large commit overlaps with chunking
// and hashing instead of all happening in Sync, and dirty pages do not
// pile up.
func startWriteback(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	})
}
