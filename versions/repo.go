package versions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunker"
	"github.com/casfs/casfs/recipe"
)

// Repo joins a store's config, its chunks and its catalog. It is safe for
// concurrent use.
type Repo struct {
	cfg      chunkstore.Config
	chunks   chunkstore.Store // plain chunk bytes in, verified plain bytes out
	cat      Catalog
	guard    *inflight
	gcMu     sync.Mutex
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
	return &Repo{cfg: cfg, chunks: chunks, cat: cat, guard: newInflight(), workers: w}
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
	rec, rid, held, err := r.storeVersion(ctx, src, nil, 0, progress)
	defer func() { r.guard.release(held) }()
	if err != nil {
		return Version{}, err
	}
	return r.commit(ctx, ino, Version{Recipe: rid, Size: rec.Size, Mtime: mtime})
}

// CommitRecipe stores rec and commits it as a new version of ino. The
// chunks rec references must already be in the store.
func (r *Repo) CommitRecipe(ctx context.Context, ino Ino, rec *recipe.Recipe, mtime time.Time) (Version, error) {
	var held []chunkstore.ID
	defer func() { r.guard.release(held) }()
	for _, e := range rec.Extents {
		r.guard.hold(e.ID)
		held = append(held, e.ID)
	}
	return r.commitRecipe(ctx, ino, rec, mtime, &held)
}

func (r *Repo) commitRecipe(ctx context.Context, ino Ino, rec *recipe.Recipe, mtime time.Time, held *[]chunkstore.ID) (Version, error) {
	rid, err := r.putChunk(ctx, rec.Encode(), held)
	if err != nil {
		return Version{}, fmt.Errorf("storing recipe: %w", err)
	}
	return r.commit(ctx, ino, Version{Recipe: rid, Size: rec.Size, Mtime: mtime})
}

// commit makes the chunks and the recipe of v durable, then commits v: the
// version entry must never be durable before what it references. Every
// commit of new content goes through here.
func (r *Repo) commit(ctx context.Context, ino Ino, v Version) (Version, error) {
	if err := r.chunks.Sync(ctx); err != nil {
		return Version{}, fmt.Errorf("making chunks durable: %w", err)
	}
	return r.cat.Commit(ctx, ino, v)
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
func (r *Repo) putHeld(ctx context.Context, id chunkstore.ID, data []byte) error {
	ok, err := r.chunks.Has(ctx, id)
	if err != nil || ok {
		return err
	}
	return r.chunks.Put(ctx, id, data)
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
	var rid chunkstore.ID
	ch, err := chunker.New(r.cfg.Chunker, src)
	if err != nil {
		return nil, rid, nil, err
	}
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
	for {
		if err := gctx.Err(); err != nil {
			break
		}
		c, err := ch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			g.Wait()
			return nil, rid, heldNow(), fmt.Errorf("reading content: %w", err)
		}
		s := &slot{ext: recipe.Extent{Offset: base + c.Offset, Size: int64(len(c.Data))}}
		slots = append(slots, s)
		size = c.Offset + int64(len(c.Data))
		buf := getBuf(len(c.Data))
		copy(buf, c.Data)
		hashed.Add(1)
		g.Go(func() error {
			defer putBuf(buf)
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
	hashed.Wait()
	rec := &recipe.Recipe{Size: base + size, Extents: make([]recipe.Extent, 0, len(prefix)+len(slots))}
	rec.Extents = append(rec.Extents, prefix...)
	for _, s := range slots {
		if !s.hole {
			rec.Extents = append(rec.Extents, s.ext)
		}
	}
	if gctx.Err() == nil {
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		data []byte
		err  error
	}
	pending := make(chan chan result, r.workers*2)
	go func() {
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
			go func(id chunkstore.ID) {
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
