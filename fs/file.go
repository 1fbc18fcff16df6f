package fs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// fileNode is a live regular file.
type fileNode struct {
	node

	// mu guards st and writers. Reads and writes of the staging file take
	// it shared (pread/pwrite need no more); creating, committing and
	// dropping the staging file take it exclusively.
	mu      sync.RWMutex
	st      *staged
	writers int // open handles that may write

	// head caches HEAD's recipe; nil when not loaded or HEAD moved.
	head atomic.Pointer[recipe.Recipe]

	// seenHead is the HEAD this mount last saw in the catalog, and stale
	// says it moved since without this mount committing: another mount of
	// a shared store committed. The kernel may hold pages of the old
	// content then, so the next open must not keep them (see noteHead).
	seenHead atomic.Pointer[versions.VersionID]
	stale    atomic.Bool

	// last is the last attribute the catalog gave. A file whose last name
	// went while it had no version is gone from the catalog but not from
	// its open handles: they keep seeing it through last, with no links.
	last atomic.Pointer[versions.Attr]

	// orphanX holds the xattrs set on such a file after it left the
	// catalog (see orphan.go). Under mu.
	orphanX map[string][]byte
}

// attr returns the file's catalog attributes, or, for a file that left the
// catalog while open, the last ones seen with Nlink 0.
func (n *fileNode) attr(ctx context.Context) (versions.Attr, error) {
	a, err := n.fs.cat.GetAttr(ctx, n.ino)
	if err == nil {
		n.last.Store(&a)
		n.noteHead(a.Head)
		return a, nil
	}
	if errors.Is(err, versions.ErrNotExist) {
		// The kernel only asks about an inode it still holds: open, or
		// cached. ENOENT from fstat of an open descriptor is never right.
		if l := n.last.Load(); l != nil {
			a := *l
			a.Nlink = 0
			return a, nil
		}
	}
	return a, err
}

// noteHead records the HEAD the catalog names now. If it moved since this
// mount last looked, and not by this mount's own commit, the cached recipe
// goes and the next open drops the kernel's pages. (The kernel also drops
// them itself when it sees the size or mtime change, with AUTO_INVAL_DATA;
// this covers a new version with the same size and mtime too.)
func (n *fileNode) noteHead(h versions.VersionID) {
	p := n.seenHead.Load()
	if p != nil && *p == h {
		return
	}
	n.seenHead.Store(&h)
	if p != nil {
		n.head.Store(nil)
		n.stale.Store(true)
	}
}

// staged is the local copy of a file being written.
type staged struct {
	f     *os.File
	size  atomic.Int64
	mtime atomic.Int64 // Unix nanoseconds
	dirty atomic.Bool  // written since the last commit
	// pending marks a change that is only a create or an O_TRUNC at open.
	// Shells open with O_TRUNC, dup2 and close the first descriptor before
	// the program writes anything: committing at that close would make an
	// empty version of every "cmd > file". So a pending change waits for
	// data (then it is part of that version) or for the last writer to go
	// (then "touch new" and "> file" still make their version).
	pending atomic.Bool

	// prefix holds extents of the last committed recipe that still describe
	// bytes [0, base) of the staging file: every write below base cuts it.
	// A commit chunks only from base (versions.WriteFrom), so appending to or
	// editing the end of a large file does not re-read all of it.
	pmu    sync.Mutex
	prefix []recipe.Extent
	base   atomic.Int64

	// Storing ahead (see maybeStoreAhead): while a large file is written,
	// the chunks of what is written so far are stored in the background
	// and become prefix, so that the commit at close has only the tail
	// left. round is the round running, if any; lowWrite is the lowest
	// offset written since it began, so that extents it cut from bytes
	// that changed meanwhile are not taken; aheadHeld are the IDs rounds
	// hold against gc until a commit has used them or the staging file
	// goes; gen counts commits.
	round     atomic.Pointer[aheadRound]
	lowWrite  atomic.Int64
	aheadHeld []chunkstore.ID // under pmu
	gen       atomic.Int64
}

// aheadRound is one round of storing ahead.
type aheadRound struct {
	base, gen int64
	done      chan struct{} // closed when exts, end and err are set
	exts      []recipe.Extent
	end       int64
	err       error
	merged    bool // under the file's mu, held exclusively
}

// maybeStoreAhead starts a round of storing ahead for st if it has grown
// Options.StoreAhead past its last cut point and no round runs. n.mu is
// held shared (by a write).
func (n *fileNode) maybeStoreAhead(st *staged) {
	base := st.base.Load()
	if ahead := n.fs.opts.StoreAhead; ahead < 0 || st.size.Load()-base < ahead || st.round.Load() != nil {
		return
	}
	r := &aheadRound{base: base, gen: st.gen.Load(), done: make(chan struct{})}
	if !st.round.CompareAndSwap(nil, r) {
		return
	}
	// Writes record themselves before and after they happen, so a write
	// still in flight now is seen in lowWrite by the merge, which waits
	// for every write to finish (it holds n.mu exclusively).
	st.lowWrite.Store(math.MaxInt64)
	limit := st.size.Load()
	n.fs.bg.Add(1)
	go func() {
		defer n.fs.bg.Done()
		exts, end, held, err := n.fs.repo.StoreAhead(context.Background(), io.NewSectionReader(st.f, r.base, limit-r.base), r.base)
		st.pmu.Lock()
		st.aheadHeld = append(st.aheadHeld, held...)
		st.pmu.Unlock()
		r.exts, r.end, r.err = exts, end, err
		close(r.done)
		if err != nil {
			slog.Debug("storing ahead failed; the commit will store it", "path", n.path(), "err", err)
		}
		if h := n.fs.aheadHook; h != nil {
			h(r.base, limit)
		}
		n.mu.Lock()
		n.mergeAhead(st, r)
		n.mu.Unlock()
	}()
}

// mergeAhead makes what round r stored part of st's prefix, as far as the
// bytes it read have not changed since. n.mu is held exclusively, so no
// write is in flight and lowWrite is final for r. The first caller merges
// (the round itself, or a commit that waited for it).
func (n *fileNode) mergeAhead(st *staged, r *aheadRound) {
	if r.merged {
		return
	}
	r.merged = true
	st.round.CompareAndSwap(r, nil)
	st.pmu.Lock()
	defer st.pmu.Unlock()
	if r.err != nil || n.st != st || st.gen.Load() != r.gen || st.base.Load() != r.base {
		return
	}
	low, base := st.lowWrite.Load(), r.base
	take := r.exts
	if r.end > low {
		take = nil
		for _, e := range r.exts {
			if e.End() > low {
				break
			}
			take, base = append(take, e), e.End()
		}
	} else {
		base = r.end
	}
	st.prefix = append(st.prefix, take...)
	st.base.Store(base)
	if len(take) > 0 {
		n.fs.aheadMerged.Add(1)
	}
}

// estimateHoles is how much of a changed staged file of size bytes is
// holes: about what the staging file leaves unallocated, near enough for
// st_blocks until the commit counts them exactly. It is false for a file
// unchanged since its last version, which has that version's holes: the
// commit also counts runs of zeros as holes, which the staging file has as
// data, so the estimate would make st_blocks change at the close that
// commits it. n.mu must be held (shared is enough), so that the staging
// file is not closed under it.
func (st *staged) estimateHoles(size int64) (int64, bool) {
	if !st.dirty.Load() && !st.pending.Load() {
		return 0, false
	}
	var s unix.Stat_t
	if err := unix.Fstat(int(st.f.Fd()), &s); err != nil {
		return 0, true
	}
	return max(0, size-s.Blocks*512), true
}

// overlay gives a the staged file's size, mtime and, if est, the
// holes estimated for it (else the catalog's, for the version it still is).
func (st *staged) overlay(a versions.Attr, holes int64, est bool) versions.Attr {
	a.Size = st.size.Load()
	a.Mtime = time.Unix(0, st.mtime.Load())
	if est {
		a.Holes = holes
	}
	a.Holes = min(a.Holes, a.Size)
	return a
}

// wrote records a write (or truncate, or hole punched) from off on, before
// and after it happens: a round of storing ahead that read any of it while
// it changed sees it in lowWrite when it merges.
func (st *staged) wrote(off int64) {
	for cur := st.lowWrite.Load(); off < cur && !st.lowWrite.CompareAndSwap(cur, off); cur = st.lowWrite.Load() {
	}
}

// cut records that bytes from off on changed.
func (st *staged) cut(off int64) {
	st.wrote(off)
	if off >= st.base.Load() {
		return
	}
	st.pmu.Lock()
	if off < st.base.Load() {
		var b int64
		st.prefix, b = versions.CutPrefix(st.prefix, off)
		st.base.Store(b)
	}
	st.pmu.Unlock()
}

// setPrefix makes rec's reusable extents the prefix.
func (st *staged) setPrefix(rec *recipe.Recipe) {
	st.pmu.Lock()
	p, b := versions.Reusable(rec)
	st.prefix = p
	st.base.Store(b)
	st.pmu.Unlock()
}

var (
	_ gofs.NodeOpener    = (*fileNode)(nil)
	_ gofs.NodeSetattrer = (*fileNode)(nil)
	_ gofs.NodeGetattrer = (*fileNode)(nil)
)

// overlay replaces a's size and mtime with the staging file's while there
// is one: the catalog knows HEAD, the program expects what it wrote.
func (n *fileNode) overlay(a versions.Attr) versions.Attr {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if st := n.st; st != nil {
		holes, est := st.estimateHoles(st.size.Load())
		a = st.overlay(a, holes, est)
	}
	return a
}

// current is what a program should see of the file now: the catalog's
// attributes with the staging file's size and mtime while there is one. The
// staging file is taken before the catalog is read: if a commit drops it in
// between, its size is still the committed one, and if there was none, the
// catalog read comes after any commit that dropped it.
func (n *fileNode) current(ctx context.Context) (versions.Attr, error) {
	n.mu.RLock()
	st := n.st
	var holes int64
	var est bool
	if st != nil {
		// Under the lock: a commit may close the staging file as soon
		// as it is released (the size and mtime are plain values).
		holes, est = st.estimateHoles(st.size.Load())
	}
	n.mu.RUnlock()
	a, err := n.attr(ctx)
	if err == nil && st != nil {
		a = st.overlay(a, holes, est)
	}
	return a, err
}

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	a, err := n.current(ctx)
	if err != nil {
		return toErrno(err, "getattr", "path", n.path())
	}
	fillAttr(a, &out.Attr)
	return 0
}

// headRecipe returns HEAD's recipe, loading it on first use.
func (n *fileNode) headRecipe(ctx context.Context) (*recipe.Recipe, error) {
	if r := n.head.Load(); r != nil {
		return r, nil
	}
	a, err := n.attr(ctx)
	if err != nil {
		return nil, err
	}
	rec := &recipe.Recipe{}
	if !a.Recipe.IsZero() {
		if rec, err = n.fs.loadRecipe(ctx, a.Recipe); err != nil {
			return nil, err
		}
	}
	n.head.Store(rec)
	return rec, nil
}

// stageLocked makes sure the file has a staging file, filled with HEAD
// unless empty is set. n.mu must be held exclusively.
func (n *fileNode) stageLocked(ctx context.Context, empty bool) error {
	if n.st != nil {
		return nil
	}
	a, err := n.attr(ctx)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(n.fs.opts.StagingDir, "stage-*")
	if err != nil {
		return err
	}
	st := &staged{f: f}
	st.mtime.Store(a.Mtime.UnixNano())
	if !empty && !a.Recipe.IsZero() {
		rec, err := n.headRecipe(ctx)
		if err == nil {
			err = n.fs.repo.Materialize(ctx, rec, f)
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		st.size.Store(rec.Size)
		st.setPrefix(rec)
	}
	if empty && a.Size > 0 {
		st.pending.Store(true)
		st.mtime.Store(now().UnixNano())
	}
	n.st = st
	n.fs.mu.Lock()
	n.fs.open[n] = struct{}{}
	n.fs.staged[n.ino] = n
	n.fs.mu.Unlock()
	return nil
}

// dropLocked removes the staging file once nothing needs it: no handle
// may write and everything is committed. n.mu must be held exclusively.
func (n *fileNode) dropLocked() {
	st := n.st
	if st == nil || n.writers > 0 || st.dirty.Load() || st.pending.Load() {
		return
	}
	st.f.Close()
	os.Remove(st.f.Name())
	st.pmu.Lock()
	n.fs.repo.Release(st.aheadHeld)
	st.aheadHeld = nil
	st.pmu.Unlock()
	n.st = nil
	n.fs.mu.Lock()
	delete(n.fs.open, n)
	if n.fs.staged[n.ino] == n {
		delete(n.fs.staged, n.ino)
	}
	n.fs.mu.Unlock()
}

// commit makes the staging file a new version if it was written since the
// last commit. With last (no writer left, or shutting down) a pending create
// or truncate counts as a change too, and the staging file is removed.
func (n *fileNode) commit(ctx context.Context, last bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.commitLocked(ctx, last)
}

// commitLocked is commit with n.mu held.
func (n *fileNode) commitLocked(ctx context.Context, last bool) error {
	st := n.st
	if st == nil {
		return nil
	}
	if r := st.round.Load(); r != nil {
		// Its chunks are this commit's: wait for them rather than
		// store them twice.
		<-r.done
		n.mergeAhead(st, r)
	}
	if st.dirty.Load() || (last && st.pending.Load()) {
		st.dirty.Store(false)
		pending := st.pending.Swap(false)
		size := st.size.Load()
		mtime := time.Unix(0, st.mtime.Load())
		st.cut(size) // a shrunk file ends before the old cut points
		st.pmu.Lock()
		prefix, base := st.prefix, st.base.Load()
		st.pmu.Unlock()
		v, rec, err := n.fs.repo.WriteFrom(ctx, n.ino, st.f, size, prefix, base, mtime)
		if err == nil {
			st.gen.Add(1)
			st.pmu.Lock()
			// The version references them now.
			n.fs.repo.Release(st.aheadHeld)
			st.aheadHeld = nil
			st.pmu.Unlock()
			st.setPrefix(rec)
			// The kernel's pages are what was just committed.
			n.seenHead.Store(&v.ID)
		}
		switch {
		case errors.Is(err, versions.ErrNotExist):
			// Unlinked while open and never committed: like any deleted
			// file without history, its content goes with it.
		case err != nil:
			st.dirty.Store(true)
			st.pending.Store(pending)
			slog.Error("commit failed; the changes stay staged and are retried at the next close", "path", n.path(), "staging", st.f.Name(), "err", err)
			return err
		}
		n.head.Store(nil)
	}
	if last {
		n.dropLocked()
	}
	return nil
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	return n.open(ctx, flags, false)
}

// open returns a handle; created says the file was just made by Create.
func (n *fileNode) open(ctx context.Context, flags uint32, created bool) (gofs.FileHandle, uint32, syscall.Errno) {
	acc := flags & syscall.O_ACCMODE
	write := acc == syscall.O_WRONLY || acc == syscall.O_RDWR || flags&syscall.O_TRUNC != 0
	if write {
		n.mu.Lock()
		err := n.stageLocked(ctx, created || flags&syscall.O_TRUNC != 0)
		if err == nil {
			st := n.st
			if flags&syscall.O_TRUNC != 0 && st.size.Load() > 0 {
				if err = st.f.Truncate(0); err == nil {
					st.cut(0)
					st.size.Store(0)
					st.pending.Store(true)
					st.mtime.Store(now().UnixNano())
				}
			}
			if created {
				st.pending.Store(true) // a new file is a change, even empty
			}
			n.writers++
		}
		n.mu.Unlock()
		if err != nil {
			return nil, 0, toErrno(err, "open", "path", n.path())
		}
	}
	// The kernel's page cache stays right without being dropped at open,
	// unless another mount of a shared store committed since this one
	// last looked: changes made through this mount went through the page
	// cache.
	keep := uint32(fuse.FOPEN_KEEP_CACHE)
	if !write {
		if _, err := n.attr(ctx); err != nil {
			return nil, 0, toErrno(err, "open", "path", n.path())
		}
	}
	if n.stale.Swap(false) {
		keep = 0
	}
	// A handle that only writes bypasses the kernel's page cache. Written
	// through the cache, every byte took a fresh page of the FUSE file's
	// cache on top of the staging file's, and fresh memory is what writing
	// costs most on the VMs measured here (docs/BENCHMARKS.md): a second
	// copy of a 1 GiB file took ~1 s less CPU this way. Such a handle
	// cannot be mmapped (that needs read access), and the kernel keeps
	// other handles' cached pages right: a direct write invalidates them.
	// It leaves clearing setuid and setgid on writes to the server, though
	// (see killPrivs).
	direct := acc == syscall.O_WRONLY
	if direct {
		keep |= fuse.FOPEN_DIRECT_IO
	}
	return &handle{n: n, write: write, direct: direct}, keep, 0
}

func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	if sz, ok := in.GetSize(); ok {
		n.mu.Lock()
		err := n.stageLocked(ctx, sz == 0)
		commitNow := false
		if err == nil {
			st := n.st
			if err = st.f.Truncate(int64(sz)); err == nil {
				st.cut(int64(sz))
				if st.size.Swap(int64(sz)) != int64(sz) {
					st.dirty.Store(true)
				}
				st.mtime.Store(now().UnixNano())
			}
			// truncate(2) names a path, not a descriptor (no fh): no
			// close will follow it, so it commits now, whoever else has
			// the file open. ftruncate(2) commits at the next close.
			commitNow = fh == nil
		}
		if err == nil && commitNow {
			err = n.commitLocked(ctx, true)
		}
		n.mu.Unlock()
		if err != nil {
			return toErrno(err, "truncate", "path", n.path())
		}
	}
	if _, err := n.setMeta(ctx, in); err != nil {
		if !n.orphaned(err) {
			return toErrno(err, "setattr", "path", n.path())
		}
		n.setOrphanMeta(metaChanges(in))
	}
	if t, ok := in.GetMTime(); ok {
		n.mu.RLock()
		if n.st != nil {
			n.st.mtime.Store(t.UnixNano()) // the next commit keeps it
		}
		n.mu.RUnlock()
	}
	a, err := n.current(ctx)
	if err != nil {
		return toErrno(err, "setattr", "path", n.path())
	}
	fillAttr(a, &out.Attr)
	return 0
}

// handle is an open file. It keeps no lock and no position: reads and
// writes carry their offset, and the last read's end is only a hint for
// read-ahead.
type handle struct {
	n       *fileNode
	write   bool
	direct  bool // FOPEN_DIRECT_IO: writes do not go through the page cache
	lastEnd atomic.Int64
}

var (
	_ gofs.FileReader   = (*handle)(nil)
	_ gofs.FileWriter   = (*handle)(nil)
	_ gofs.FileFlusher  = (*handle)(nil)
	_ gofs.FileFsyncer  = (*handle)(nil)
	_ gofs.FileReleaser = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctx = uninterruptible(ctx)
	n := h.n
	n.mu.RLock()
	if st := n.st; st != nil {
		k, err := st.f.ReadAt(dest, off)
		n.mu.RUnlock()
		if err != nil && err != io.EOF {
			return nil, toErrno(err, "read staging", "path", n.path())
		}
		return fuse.ReadResultData(dest[:k]), 0
	}
	n.mu.RUnlock()
	rec, err := n.headRecipe(ctx)
	if err != nil {
		return nil, toErrno(err, "read", "path", n.path())
	}
	seq := sequential(h.lastEnd.Swap(off+int64(len(dest))), off)
	return n.fs.readRecipe(ctx, rec, dest, off, seq, n.path())
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	caller, _ := fuse.FromContext(ctx)
	ctx = uninterruptible(ctx)
	n := h.n
	if h.direct {
		if errno := n.killPrivs(ctx, caller); errno != 0 {
			return 0, errno
		}
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	st := n.st
	if st == nil || !h.write {
		return 0, syscall.EBADF
	}
	st.cut(off)
	k, err := st.f.WriteAt(data, off)
	st.wrote(off)
	if k > 0 {
		end := off + int64(k)
		for cur := st.size.Load(); end > cur && !st.size.CompareAndSwap(cur, end); cur = st.size.Load() {
		}
		st.dirty.Store(true)
		st.mtime.Store(now().UnixNano())
		n.maybeStoreAhead(st)
	}
	if err != nil {
		return uint32(k), toErrno(err, "write", "path", n.path())
	}
	return uint32(k), 0
}

// killPrivs clears the setuid bit, and the setgid bit of a group-executable
// file, before a write by anyone but root, as the kernel does before writes
// through the page cache (file_remove_privs) but not before direct ones,
// which it leaves to the server. Root stands in for CAP_FSETID, which the
// request does not carry. The mode comes from the last attributes seen, so
// a write to a file without those bits costs no catalog read.
func (n *fileNode) killPrivs(ctx context.Context, caller *fuse.Caller) syscall.Errno {
	if caller == nil || caller.Uid == 0 {
		return 0
	}
	var mode uint32
	if l := n.last.Load(); l != nil {
		mode = l.Mode
	} else {
		a, err := n.attr(ctx)
		if err != nil {
			return toErrno(err, "write", "path", n.path())
		}
		mode = a.Mode
	}
	kill := mode & syscall.S_ISUID
	if mode&syscall.S_ISGID != 0 && mode&syscall.S_IXGRP != 0 {
		kill |= syscall.S_ISGID
	}
	if kill == 0 {
		return 0
	}
	in := &fuse.SetAttrIn{}
	in.Valid = fuse.FATTR_MODE
	in.Mode = mode &^ kill
	if errno := n.Setattr(ctx, nil, in, &fuse.AttrOut{}); errno != 0 {
		return errno
	}
	// The kernel caches the mode it last saw: make it ask again.
	_ = n.EmbeddedInode().NotifyContent(-1, 0)
	return 0
}

// Flush runs in close(2), which waits for it: a changed file is committed
// before close returns.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	ctx = uninterruptible(ctx)
	if !h.write {
		return 0
	}
	return toErrno(h.n.commit(ctx, false), "commit", "path", h.n.path())
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	return toErrno(h.n.commit(ctx, false), "commit", "path", h.n.path())
}

// Release comes after close has returned. The last writer's release
// commits anything left (a write after the last flush, e.g. through mmap)
// and drops the staging file.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	ctx = uninterruptible(ctx)
	if !h.write {
		return 0
	}
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.writers--
	// Only the last writer's release may commit a pending create or
	// truncate: RELEASE is asynchronous, and an earlier handle's can arrive
	// after the next open(O_TRUNC) but before that handle writes. Counting
	// and committing under one lock keeps such an open out of the middle.
	if err := n.commitLocked(context.WithoutCancel(ctx), n.writers == 0); err != nil {
		return toErrno(err, "commit", "path", n.path())
	}
	return 0
}

var _ gofs.FileAllocater = (*handle)(nil)

// fallocate(2) modes.
const (
	fallocKeepSize      = 0x01
	fallocPunchHole     = 0x02
	fallocCollapseRange = 0x08
	fallocZeroRange     = 0x10
	fallocInsertRange   = 0x20
)

// Allocate is fallocate(2) on the staging file: reserving space (so a later
// write cannot hit ENOSPC there), growing the file without
// FALLOC_FL_KEEP_SIZE, and punching holes or zeroing ranges, which change
// its content. Collapsing and inserting ranges, which move data, are not
// supported (EOPNOTSUPP, as on many filesystems).
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	if mode&(fallocCollapseRange|fallocInsertRange) != 0 {
		return syscall.EOPNOTSUPP
	}
	n := h.n
	n.mu.RLock()
	defer n.mu.RUnlock()
	st := n.st
	if st == nil || !h.write {
		return syscall.EBADF
	}
	changes := mode&(fallocPunchHole|fallocZeroRange) != 0
	if changes {
		st.cut(int64(off))
	}
	err := syscall.Fallocate(int(st.f.Fd()), mode, int64(off), int64(size))
	st.wrote(int64(off))
	if err != nil {
		return toErrno(err, "fallocate", "path", n.path())
	}
	if mode&fallocKeepSize == 0 {
		end := int64(off + size)
		for cur := st.size.Load(); end > cur; cur = st.size.Load() {
			if st.size.CompareAndSwap(cur, end) {
				changes = true
				break
			}
		}
	}
	if changes {
		st.dirty.Store(true)
		st.mtime.Store(now().UnixNano())
	}
	return 0
}
