package versions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/errgroup"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunker"
	"github.com/casfs/casfs/recipe"
)

// Repo joins a store's config, its chunks and its catalog. It is safe for
// concurrent use.
type Repo struct {
	cfg    chunkstore.Config
	chunks chunkstore.Store // plain chunk bytes in, verified plain bytes out
	cat    Catalog
	guard  *inflight
	gcMu   sync.Mutex
	margin time.Duration // see DefaultGCMargin
	// touched remembers when this process last put or touched chunks of
	// a shared store (the time before the operation, so the chunk's mtime
	// is no older), so that a commit need not touch them again soon after.
	touched  *lru.Cache[chunkstore.ID, time.Time]
	workers  int
	closers  []func() error
	localDir string
}

// New returns a Repo over chunks (which must take and give plain, verified
// chunk data: an Encoded store or a decorator of one) and cat.
func New(cfg chunkstore.Config, chunks chunkstore.Store, cat Catalog) *Repo {
	// Chunks in flight: hashing and compressing use the cores, but storing
	// mostly waits (fsync locally, the network for RADOS), so more chunks
	// than cores are in flight. Memory is bounded by workers × max chunk.
	w := chunks.Properties().Concurrency
	w = max(4*runtime.GOMAXPROCS(0), min(w, 16))
	r := &Repo{cfg: cfg, chunks: chunks, cat: cat, guard: newInflight(), workers: w, margin: DefaultGCMargin}
	if _, ok := r.toucher(); ok {
		// 256k IDs, about 20 MB: the chunks of a few hundred GiB.
		r.touched, _ = lru.New[chunkstore.ID, time.Time](1 << 18)
	}
	return r
}

// DefaultGCMargin is how long a chunk of a store shared by several machines
// (a chunkstore.Toucher) stays safe from gc after it was last put or
// touched. gc records its start in the catalog before it marks (GCFencer)
// and deletes only chunks idle since start-margin; a commit's version entry
// is written only if its chunks were touched after the latest gc start
// less the margin, and otherwise touches them again. So gc on one machine
// never deletes a chunk a commit on another relies on, as long as the
// machines' clocks are less than the margin apart. Stores that one process
// writes (the local store) do not need it: the in-process guard (inflight)
// sees every commit.
const DefaultGCMargin = time.Hour

// SetGCMargin changes the margin of a shared store's gc and commits (see
// DefaultGCMargin); d must be positive. For tests, and for operators who
// know their clocks and commit times.
func (r *Repo) SetGCMargin(d time.Duration) {
	if d > 0 {
		r.margin = d
	}
}

// toucher returns the store as a Toucher if several machines may write it.
func (r *Repo) toucher() (chunkstore.Toucher, bool) {
	t, ok := r.chunks.(chunkstore.Toucher)
	return t, ok
}

// commit makes the chunks and the recipe of v durable (Sync), then writes
// the version entry of a commit that started at started and holds (has put
// or touched) the chunks in held. Every commit of new content goes through
// here. On a shared store it makes
// sure no gc on another machine can have deleted them meanwhile: through the
// catalog's fence (GCFencer), touching them again if a gc started since; or,
// with a catalog that has none, by touching them again once the commit took
// more than half the gc margin.
func (r *Repo) commit(ctx context.Context, ino Ino, v Version, held []chunkstore.ID, started time.Time) (Version, error) {
	// The version entry must never be durable before what it references.
	if err := r.chunks.Sync(ctx); err != nil {
		return Version{}, fmt.Errorf("making chunks durable: %w", err)
	}
	t, shared := r.toucher()
	if !shared {
		return r.cat.Commit(ctx, ino, v)
	}
	// Chunks this process touched or put within a quarter margin before
	// now were not touched again (putHeld), so the commit vouches only for
	// touches from a quarter margin before it started. (Without that, a
	// commit that skipped a chunk put at t0, and lasted long enough for a
	// gc to start after t0+margin and delete the chunk, would pass the
	// fence check as long as that gc started before started+margin.)
	started = started.Add(-r.margin / 4)
	if f, ok := r.cat.(GCFencer); ok {
		out, err := f.CommitFenced(ctx, ino, v, started, r.margin)
		if !errors.Is(err, ErrFenced) {
			return out, err
		}
		again := time.Now()
		if err := r.touchAll(ctx, t, held); err != nil {
			return Version{}, fmt.Errorf("commit of inode %d: %w", ino, err)
		}
		return f.CommitFenced(ctx, ino, v, again, r.margin)
	}
	if time.Since(started) > r.margin/2 {
		if err := r.touchAll(ctx, t, held); err != nil {
			return Version{}, fmt.Errorf("commit of inode %d took %v, more than half the gc margin %v: %w", ino, time.Since(started).Round(time.Millisecond), r.margin, err)
		}
	}
	return r.cat.Commit(ctx, ino, v)
}

// errChunkGone is a chunk a commit meant to reuse that is no longer stored.
var errChunkGone = errors.New("chunk no longer stored")

// touchAll touches ids in parallel; a missing one is errChunkGone.
func (r *Repo) touchAll(ctx context.Context, t chunkstore.Toucher, ids []chunkstore.ID) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.workers)
	for _, id := range ids {
		g.Go(func() error {
			ok, err := r.touch(gctx, t, id)
			if err == nil && !ok {
				err = fmt.Errorf("chunk %s: %w", id, errChunkGone)
			}
			return err
		})
	}
	return g.Wait()
}

// Config is the store's config.
func (r *Repo) Config() chunkstore.Config { return r.cfg }

// Catalog is the namespace and history.
func (r *Repo) Catalog() Catalog { return r.cat }

// Chunks is the verified chunk store.
func (r *Repo) Chunks() chunkstore.Store { return r.chunks }

// Close closes the catalog and the store.
func (r *Repo) Close() error {
	errs := []error{r.cat.Close(), r.chunks.Close()}
	for _, c := range r.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Progress is told how many more bytes a long operation has done.
type Progress func(n int64)

// Write commits the whole of src as a new version of the regular file ino
// with the given mtime (zero: now). Memory stays bounded by a few chunks
// whatever the length of src. On error nothing is committed; chunks already
// stored are leaked until gc.
func (r *Repo) Write(ctx context.Context, ino Ino, src io.Reader, mtime time.Time, progress Progress) (Version, error) {
	started := time.Now()
	rec, rid, held, err := r.storeVersion(ctx, src, nil, 0, progress)
	defer func() { r.guard.release(held) }()
	if err != nil {
		return Version{}, err
	}
	return r.commit(ctx, ino, Version{Recipe: rid, Size: rec.Size, Holes: rec.Holes(), Mtime: mtime}, held, started)
}

// WritePath is Write to the regular file at path p, which it makes (with
// attr's mode, uid and gid) if it does not exist, with any missing parent
// directories (dirMode, and attr's uid and gid). It makes them only once
// src is stored, so a write that fails, is interrupted or is killed while
// reading src leaves the namespace as it was: no empty file, no new
// directories (the chunks stored meanwhile are leaked until gc). A parent
// that is not a directory, or a p that is one, fails before src is read.
// Its errors leave p for the caller to name.
func (r *Repo) WritePath(ctx context.Context, p string, attr Attr, dirMode uint32, src io.Reader, mtime time.Time, progress Progress) (Version, error) {
	parts, err := SplitPath(p)
	if err != nil {
		return Version{}, err
	}
	if len(parts) == 0 {
		return Version{}, ErrIsDir
	}
	dirPath, name := path.Join(parts[:len(parts)-1]...), parts[len(parts)-1]
	existing, err := r.Resolve(ctx, p)
	switch {
	case err == nil && existing.IsDir():
		return Version{}, ErrIsDir
	case err == nil && !existing.IsRegular():
		return Version{}, fmt.Errorf("not a regular file: %w", ErrInvalid)
	case err == nil:
		return r.Write(ctx, existing.Ino, src, mtime, progress)
	case errors.Is(err, ErrNotExist):
		// Whatever of dirPath exists must be directories.
		if _, derr := r.Resolve(ctx, dirPath); derr != nil && !errors.Is(derr, ErrNotExist) {
			return Version{}, derr
		}
	default:
		return Version{}, err
	}

	started := time.Now()
	rec, rid, held, err := r.storeVersion(ctx, src, nil, 0, progress)
	defer func() { r.guard.release(held) }()
	if err != nil {
		return Version{}, err
	}
	v := Version{Recipe: rid, Size: rec.Size, Holes: rec.Holes(), Mtime: mtime}
	dir, err := r.MkdirAll(ctx, dirPath, dirMode, attr.Uid, attr.Gid)
	if err != nil {
		return Version{}, err
	}
	a, err := r.cat.Create(ctx, dir.Ino, name, Attr{Mode: ModeRegular | attr.Mode&^ModeType, Uid: attr.Uid, Gid: attr.Gid})
	if err != nil {
		return Version{}, err
	}
	v, err = r.commit(ctx, a.Ino, v, held, started)
	if err != nil {
		// Take back the empty file, so that a failed write leaves p as
		// it was. Best effort, and not on ctx: an interrupted write
		// should clean up too.
		if rerr := r.cat.Remove(context.WithoutCancel(ctx), dir.Ino, name, false); rerr != nil {
			err = fmt.Errorf("%w (and removing the empty file made for it: %v)", err, rerr)
		}
	}
	return v, err
}

// CommitRecipe stores rec and commits it as a new version of ino. The
// chunks rec references must already be in the store.
func (r *Repo) CommitRecipe(ctx context.Context, ino Ino, rec *recipe.Recipe, mtime time.Time) (Version, error) {
	started := time.Now()
	var held []chunkstore.ID
	defer func() { r.guard.release(held) }()
	for _, e := range rec.Extents {
		r.guard.hold(e.ID)
		held = append(held, e.ID)
	}
	if t, ok := r.toucher(); ok {
		if err := r.touchAll(ctx, t, held); err != nil {
			return Version{}, err
		}
	}
	rid, err := r.putChunk(ctx, rec.Encode(), &held)
	if err != nil {
		return Version{}, fmt.Errorf("storing recipe: %w", err)
	}
	return r.commit(ctx, ino, Version{Recipe: rid, Size: rec.Size, Holes: rec.Holes(), Mtime: mtime}, held, started)
}

// putChunk stores data unless the store has it, holding its ID against gc.
func (r *Repo) putChunk(ctx context.Context, data []byte, held *[]chunkstore.ID) (chunkstore.ID, error) {
	id := r.cfg.Hash.Sum(data)
	r.guard.hold(id)
	*held = append(*held, id)
	return id, r.putHeld(ctx, id, data)
}

// putHeld stores data under id, which the caller holds, unless the store
// has it. The hold comes before the check, so gc cannot delete the chunk
// between a "yes, it is there" and the version that relies on it.
//
// On a shared store the check is a Touch, which also tells a gc on another
// machine that the chunk is in use (see chunkstore.Toucher).
//
// A chunk this process put or touched within a quarter of the gc margin is
// neither touched nor put again: Repo.commit vouches for touches from a
// quarter margin before the commit began, which covers it. So a file
// written twice in a row costs the second time no store operation per
// chunk.
func (r *Repo) putHeld(ctx context.Context, id chunkstore.ID, data []byte) error {
	t, shared := r.toucher()
	if !shared {
		ok, err := r.chunks.Has(ctx, id)
		if err != nil || ok {
			return err
		}
		return r.chunks.Put(ctx, id, data)
	}
	if r.recentlyTouched(id) {
		return nil
	}
	// Before the Touch: a Put that finds the chunk made meanwhile by
	// another machine (and succeeds) leaves that machine's mtime, which is
	// after this.
	before := time.Now()
	ok, err := r.touch(ctx, t, id)
	if err != nil || ok {
		return err
	}
	if err := r.chunks.Put(ctx, id, data); err != nil {
		return err
	}
	r.touched.Add(id, before)
	return nil
}

// recentlyTouched reports whether this process put or touched id on a
// shared store within a quarter of the gc margin: Repo.commit vouches for
// such touches, so the chunk need not be touched again.
func (r *Repo) recentlyTouched(id chunkstore.ID) bool {
	at, ok := r.touched.Get(id)
	return ok && time.Since(at) < r.margin/4
}

// touch touches id on a shared store and remembers when.
func (r *Repo) touch(ctx context.Context, t chunkstore.Toucher, id chunkstore.ID) (bool, error) {
	before := time.Now()
	ok, err := t.Touch(ctx, id)
	if ok && err == nil {
		r.touched.Add(id, before)
	}
	return ok, err
}

var bufPool sync.Pool

func getBuf(n int) []byte {
	if b, ok := bufPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n, max(n, chunkstore.DefaultFastCDCMax))
}

func putBuf(b []byte) { bufPool.Put(&b) }

// storeContent is storeVersion for a whole stream, without its recipe
// stored: the recipe of src and the IDs held.
func (r *Repo) storeContent(ctx context.Context, src io.Reader, progress Progress) (*recipe.Recipe, []chunkstore.ID, error) {
	rec, _, held, err := r.storeVersion(ctx, src, nil, 0, progress)
	return rec, held, err
}

// storeVersion chunks src, which holds the file's bytes from base on, and
// stores every chunk the store lacks and then the recipe (prefix, then
// src's extents), all in parallel: at most r.workers chunks are in flight.
// All-zero chunks become holes. It returns the recipe, its ID and every
// chunk ID it holds against gc (the caller releases them once the version
// is committed, or given up).
//
// The recipe's ID is known as soon as every chunk is hashed, so the recipe
// is stored while the last chunks still are: both only need to be durable
// before the version entry, and a small file then waits for one round of
// store writes, not two.
func (r *Repo) storeVersion(ctx context.Context, src io.Reader, prefix []recipe.Extent, base int64, progress Progress) (*recipe.Recipe, chunkstore.ID, []chunkstore.ID, error) {
	return r.store(ctx, src, prefix, base, progress, false)
}

// StoreAhead stores the chunks of a file that is still being written, so
// that its commit later has less to do: src holds the file's bytes from base
// (a cut point) on, as far as they are written. Every chunk but the last is
// stored (the last ends where src ends, which need not be a cut point once
// more is written). It returns their extents, where they end (the next cut
// point: what a WriteFrom may take as its base, with prefix + exts as its
// prefix), and the IDs it holds against gc: the caller releases them with
// Release once a version referencing them is committed, or when it gives up
// on them.
func (r *Repo) StoreAhead(ctx context.Context, src io.Reader, base int64) (exts []recipe.Extent, end int64, held []chunkstore.ID, err error) {
	rec, _, held, err := r.store(ctx, src, nil, base, nil, true)
	if err != nil {
		return nil, base, held, err
	}
	return rec.Extents, rec.Size, held, nil
}

// Release releases IDs that StoreAhead held.
func (r *Repo) Release(held []chunkstore.ID) { r.guard.release(held) }

// store is storeVersion; with ahead it is StoreAhead's work: the last chunk
// is left out and no recipe is stored, and the recipe returned has the
// extents stored and, as its size, where the last one left out began.
func (r *Repo) store(ctx context.Context, src io.Reader, prefix []recipe.Extent, base int64, progress Progress, ahead bool) (*recipe.Recipe, chunkstore.ID, []chunkstore.ID, error) {
	var rid chunkstore.ID
	segs, length, segReader := segments(src)
	type slot struct {
		ext  recipe.Extent
		hole bool
	}
	var (
		slots  []*slot
		mu     sync.Mutex
		held   []chunkstore.ID
		size   int64
		hashed sync.WaitGroup
	)
	hold := func(id chunkstore.ID) {
		r.guard.hold(id)
		mu.Lock()
		held = append(held, id)
		mu.Unlock()
	}
	heldNow := func() []chunkstore.ID {
		mu.Lock()
		defer mu.Unlock()
		return held
	}
	for _, e := range prefix {
		hold(e.ID)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.workers)
	// dispatch stores one chunk in the group, and then calls done.
	dispatch := func(s *slot, buf []byte, done func()) {
		hashed.Add(1)
		g.Go(func() error {
			defer done()
			if isZero(buf) {
				s.hole = true
				hashed.Done()
			} else {
				id := r.cfg.Hash.Sum(buf)
				hold(id)
				s.ext.ID = id
				hashed.Done()
				if err := r.putHeld(gctx, id, buf); err != nil {
					return fmt.Errorf("storing chunk at offset %d: %w", s.ext.Offset, err)
				}
			}
			if progress != nil {
				progress(s.ext.Size)
			}
			return nil
		})
	}
	// With ahead, each chunk is dispatched once the next one is read, and
	// the last one never.
	var last *slot
	var lastBuf []byte
	var lastDone func()
	if t, ok := r.toucher(); ok && len(prefix) > 0 {
		// The reused extents are stored chunks this version relies on
		// like any other: touch them, so a gc elsewhere keeps them (a
		// missing one is errChunkGone: WriteFrom then chunks it all).
		// Those put or touched lately, as storing ahead did for most of
		// them, are left out, as putHeld leaves them out.
		var ids []chunkstore.ID
		for _, e := range prefix {
			if !r.recentlyTouched(e.ID) {
				ids = append(ids, e.ID)
			}
		}
		if len(ids) > 0 {
			g.Go(func() error { return r.touchAll(gctx, t, ids) })
		}
	}
	// chunks yields each chunk of src with its offset from src's start; the
	// chunk's bytes are the caller's until it calls done. A segment that is
	// a section of a file (a file put from disk, a mount's staging file) is
	// cut on several cores by chunker.Split, which hands over its buffers;
	// a stream's chunks are copied out of the chunker's one buffer.
	chunks := func(yield func(off int64, data []byte, done func()), segmentEnd func()) error {
		for i, seg := range segs {
			if i > 0 {
				segmentEnd()
			}
			sr := segReader(seg)
			if sec, ok := sr.(*io.SectionReader); ok && seg.n >= 0 {
				err := chunker.Split(gctx, r.cfg.Chunker, sec, seg.n, 0, func(c chunker.Chunk, done func()) error {
					yield(seg.off+c.Offset, c.Data, done)
					return nil
				})
				if gctx.Err() != nil {
					return nil // the group's error says why
				}
				if err != nil {
					return fmt.Errorf("reading content: %w", err)
				}
				continue
			}
			ch, err := chunker.New(r.cfg.Chunker, sr)
			if err != nil {
				return err
			}
			for gctx.Err() == nil {
				c, err := ch.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return fmt.Errorf("reading content: %w", err)
				}
				buf := getBuf(len(c.Data))
				copy(buf, c.Data)
				yield(seg.off+c.Offset, buf, func() { putBuf(buf) })
			}
		}
		return nil
	}
	// dispatchLast dispatches the chunk held back with ahead.
	dispatchLast := func() {
		if last != nil {
			slots = append(slots, last)
			size = last.ext.End() - base
			dispatch(last, lastBuf, lastDone)
			last, lastBuf, lastDone = nil, nil, nil
		}
	}
	err := chunks(func(off int64, data []byte, done func()) {
		s := &slot{ext: recipe.Extent{Offset: base + off, Size: int64(len(data))}}
		if ahead {
			dispatchLast()
			last, lastBuf, lastDone = s, data, done
			return
		}
		slots = append(slots, s)
		size = off + int64(len(data))
		dispatch(s, data, done)
	}, func() {
		// A segment's last chunk is not the stream's: it goes now, not
		// when the next segment's first is cut, so that it does not keep
		// a block of the last segment's Split from the next one's (see
		// chunker.Split's block buffers).
		dispatchLast()
	})
	if lastDone != nil {
		lastDone()
	}
	if err != nil {
		g.Wait()
		return nil, rid, heldNow(), err
	}
	if ahead && last != nil {
		// What is stored ends where the chunk left out begins.
		size = last.ext.Offset - base
	} else if !ahead && length >= 0 {
		size = length // a file may end in a hole
	}
	hashed.Wait()
	rec := &recipe.Recipe{Size: base + size, Extents: make([]recipe.Extent, 0, len(prefix)+len(slots))}
	rec.Extents = append(rec.Extents, prefix...)
	for _, s := range slots {
		if !s.hole {
			rec.Extents = append(rec.Extents, s.ext)
		}
	}
	if gctx.Err() == nil && !ahead {
		enc := rec.Encode()
		rid = r.cfg.Hash.Sum(enc)
		hold(rid)
		g.Go(func() error {
			if err := r.putHeld(gctx, rid, enc); err != nil {
				return fmt.Errorf("storing recipe: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, rid, heldNow(), err
	}
	if err := ctx.Err(); err != nil {
		return nil, rid, heldNow(), err
	}
	return rec, rid, heldNow(), nil
}

// isZero reports whether b is all zero bytes, eight at a time.
func isZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// LoadRecipe fetches and decodes the recipe chunk id.
func (r *Repo) LoadRecipe(ctx context.Context, id chunkstore.ID) (*recipe.Recipe, error) {
	return recipe.Load(ctx, id, r.chunks.Get)
}

// Fetch returns the verified plain bytes of chunk id.
func (r *Repo) Fetch(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	return r.chunks.Get(ctx, id)
}

// forEachChunk calls fn with each extent of rec and its verified bytes, in
// order, fetching up to a few chunks ahead in parallel so a sequential pass
// runs at the store's parallel speed with memory bounded by that window.
func (r *Repo) forEachChunk(ctx context.Context, rec *recipe.Recipe, fn func(e recipe.Extent, data []byte) error) error {
	// It returns only once its fetches have: one still running when the
	// caller closes the repo would use a closed store.
	var running sync.WaitGroup
	defer running.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		data []byte
		err  error
	}
	pending := make(chan chan result, r.workers*2)
	running.Add(1)
	go func() {
		defer running.Done()
		defer close(pending)
		sem := make(chan struct{}, r.workers)
		for _, e := range rec.Extents {
			c := make(chan result, 1)
			select {
			case pending <- c:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			running.Add(1)
			go func(id chunkstore.ID) {
				defer running.Done()
				defer func() { <-sem }()
				b, err := r.chunks.Get(ctx, id)
				c <- result{b, err}
			}(e.ID)
		}
	}()
	for _, e := range rec.Extents {
		c, ok := <-pending
		if !ok {
			return ctx.Err()
		}
		res := <-c
		if res.err != nil {
			return fmt.Errorf("at offset %d: %w", e.Offset, res.err)
		}
		if int64(len(res.data)) != e.Size {
			return fmt.Errorf("at offset %d: %w", e.Offset, &chunkstore.CorruptError{ID: e.ID,
				Reason: fmt.Sprintf("chunk has %d bytes, recipe says %d", len(res.data), e.Size)})
		}
		if err := fn(e, res.data); err != nil {
			return err
		}
	}
	return nil
}

// CopyOut writes the content rec describes to w, holes as zeros.
func (r *Repo) CopyOut(ctx context.Context, rec *recipe.Recipe, w io.Writer, progress Progress) error {
	var pos int64
	zeros := make([]byte, 1<<16)
	writeZeros := func(n int64) error {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			if _, err := w.Write(zeros[:k]); err != nil {
				return err
			}
			n -= k
			if progress != nil {
				progress(k)
			}
		}
		return nil
	}
	err := r.forEachChunk(ctx, rec, func(e recipe.Extent, data []byte) error {
		if err := writeZeros(e.Offset - pos); err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		if progress != nil {
			progress(e.Size)
		}
		pos = e.End()
		return nil
	})
	if err != nil {
		return err
	}
	return writeZeros(rec.Size - pos)
}

// Materialize writes the content rec describes into f at the same offsets
// and sets f's size, leaving holes as holes (f is expected to be empty).
func (r *Repo) Materialize(ctx context.Context, rec *recipe.Recipe, f interface {
	io.WriterAt
	Truncate(int64) error
}) error {
	if err := r.forEachChunk(ctx, rec, func(e recipe.Extent, data []byte) error {
		_, err := f.WriteAt(data, e.Offset)
		return err
	}); err != nil {
		return err
	}
	return f.Truncate(rec.Size)
}
