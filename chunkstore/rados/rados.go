//go:build ceph

package rados

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	librados "github.com/ceph/go-ceph/rados"
	"golang.org/x/sync/errgroup"

	"github.com/casfs/casfs/chunkstore"
)

// Names in the pool; see the package documentation.
const (
	configName = "casfs.config"
	chunksName = "chunks"
)

// ConfigObject is the name of a store's config object, in the store's
// namespace.
const ConfigObject = configName

// maxObjectSize is the largest chunk Put accepts: room for any chunk a
// chunker makes plus framing, and well below Ceph's default
// osd_max_write_size (90 MB), above which a write fails.
const maxObjectSize = 64 << 20

var (
	// ErrNoStore is matched by Open's error for a namespace that holds no
	// casfs store config.
	ErrNoStore = errors.New("no casfs store")
	// ErrExists is matched by Init's error when the namespace already holds
	// a store.
	ErrExists = errors.New("already a casfs store")
)

// Store is a chunkstore.Store in a RADOS pool. Its methods are safe for
// concurrent use.
type Store struct {
	c   *Conn
	cfg chunkstore.Config
}

var _ chunkstore.Store = (*Store)(nil)

// Init makes a new store in c's pool and namespace with config cfg,
// assigning cfg.ID if it is empty. It refuses a namespace that already holds
// a store (ErrExists): the config object is created exclusively, so of two
// racing Inits exactly one wins.
func Init(ctx context.Context, c *Conn, cfg chunkstore.Config) error {
	where := c.opts.location()
	if cfg.ID == "" {
		cfg.ID = newStoreID()
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("init store %s: %w", where, err)
	}
	b, err := chunkstore.MarshalConfig(cfg)
	if err != nil {
		return fmt.Errorf("init store %s: %w", where, err)
	}
	err = c.call(ctx, func() error { return createObject(c.meta, configName, b) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, librados.ErrObjectExists):
		return fmt.Errorf("init store %s: %w (config object %s exists)", where, ErrExists, configName)
	}
	return fmt.Errorf("init store %s: write config object %s: %w", where, configName, err)
}

// createObject creates oid holding data in one atomic op, failing with
// librados.ErrObjectExists if it exists.
func createObject(io *librados.IOContext, oid string, data []byte) error {
	op := librados.CreateWriteOp()
	defer op.Release()
	op.Create(librados.CreateExclusive)
	// An empty WriteFull is not allowed by go-ceph; the create alone makes
	// an empty object.
	if len(data) > 0 {
		op.WriteFull(data)
	}
	return op.Operate(io, oid, librados.OperationNoFlag)
}

// newStoreID returns a random store ID: 16 bytes, in hex.
func newStoreID() string {
	var b [16]byte
	// crypto/rand.Read never fails; it aborts the program if the kernel
	// cannot supply randomness.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Open connects as opts say and opens the store there. The Store owns the
// connection: Close closes it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	c, err := Connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, c)
	if err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

// open reads and checks the config object.
func open(ctx context.Context, c *Conn) (*Store, error) {
	where := c.opts.location()
	var b []byte
	err := c.call(ctx, func() error {
		var err error
		b, err = readObject(c.meta, configName)
		return err
	})
	switch {
	case errors.Is(err, librados.ErrNotFound):
		return nil, fmt.Errorf("%w at %s: it has no config object %s (create a store with 'casfs init %s')", ErrNoStore, where, configName, where)
	case err != nil:
		return nil, fmt.Errorf("open store %s: read config object %s: %w", where, configName, err)
	}
	cfg, err := chunkstore.UnmarshalConfig(b)
	if err != nil {
		return nil, fmt.Errorf("open store %s: config object %s: %w", where, configName, err)
	}
	return &Store{c: c, cfg: cfg}, nil
}

// readBufSize is the buffer readObject tries first: room for the largest
// chunk the default chunkers make, framed. Objects that fill it are larger
// (or exactly its size) and are read again at their size.
const readBufSize = 4<<20 + 64<<10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// readObject returns the whole of oid. Objects it reads are immutable
// (chunks, the config), so what one read returns is the object: one round
// trip for any chunk up to readBufSize, instead of a stat and a read. One
// that is larger is stat'ed and read at its size; one deleted in between
// gives ENOENT like a missing one.
func readObject(io *librados.IOContext, oid string) ([]byte, error) {
	b, _, err := readObjectInto(io, oid, nil)
	return b, err
}

// readObjectInto is readObject with the result in a buffer from bufs (if
// not nil), which it returns as buf; nothing is lent on an error. With a
// size hint in bufs (chunkstore.WithSizeHint) it reads into that buffer
// directly, saving a copy of the object.
func readObjectInto(io *librados.IOContext, oid string, bufs chunkstore.Buffers) (data, buf []byte, err error) {
	alloc := func(n int) []byte {
		if bufs == nil {
			return make([]byte, n)
		}
		buf = bufs.Get(n)
		return buf
	}
	if h := chunkstore.SizeHint(bufs); h > 0 && h < maxObjectSize {
		// Straight into the caller's buffer: one byte more than the
		// hint, so a short read proves that it is the whole object.
		b := bufs.Get(h + 1)
		n, err := io.Read(oid, b, 0)
		if err != nil {
			bufs.Put(b)
			return nil, nil, err
		}
		if n < len(b) {
			return b[:n], b, nil
		}
		bufs.Put(b) // larger than the hint said: read it as if unhinted
	}
	bp := readBufs.Get().(*[]byte)
	n, err := io.Read(oid, *bp, 0)
	if err != nil {
		readBufs.Put(bp)
		return nil, nil, err
	}
	if n < len(*bp) {
		b := alloc(n)
		copy(b, (*bp)[:n])
		readBufs.Put(bp)
		return b, buf, nil
	}
	readBufs.Put(bp)
	st, err := io.Stat(oid)
	if err != nil {
		return nil, nil, err
	}
	if st.Size > maxObjectSize {
		return nil, nil, fmt.Errorf("object is %d bytes, more than the %d a casfs object can be", st.Size, maxObjectSize)
	}
	b := alloc(int(st.Size))
	if n, err = io.Read(oid, b, 0); err == nil && n != len(b) {
		err = fmt.Errorf("read %d bytes of a %d-byte object", n, len(b))
	}
	if err != nil {
		if buf != nil {
			bufs.Put(buf)
		}
		return nil, nil, err
	}
	return b, buf, nil
}

// Config returns the store's config, as Init recorded it.
func (s *Store) Config() chunkstore.Config { return s.cfg }

// Conn returns the store's connection, for callers that keep more in the
// same pool. It is closed with the store.
func (s *Store) Conn() *Conn { return s.c }

// errorf wraps err from operation op on chunk id with where it happened.
func (s *Store) errorf(op string, id chunkstore.ID, err error) error {
	return fmt.Errorf("store %s: %s chunk %s (object %s in namespace %q): %w",
		s.c.opts.location(), op, id.Str(), id, s.c.opts.chunksNamespace(), err)
}

// Put stores data under id in one atomic create-and-write op. An id already
// present is left as it is.
func (s *Store) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	if len(data) > maxObjectSize {
		return s.errorf("put", id, fmt.Errorf("%d bytes is more than the %d a chunk object can be", len(data), maxObjectSize))
	}
	err := s.c.call(ctx, func() error { return createObject(s.c.chunks, id.String(), data) })
	switch {
	case err == nil, errors.Is(err, librados.ErrObjectExists):
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return s.errorf("put", id, err)
}

// Get returns the bytes stored under id.
func (s *Store) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	data, _, err := s.GetBuffered(ctx, id, nil)
	return data, err
}

var _ chunkstore.BufferedGetter = (*Store)(nil)

// GetBuffered is Get with the bytes in a buffer from bufs (nil: a new
// allocation, as Get has it), which the chunk cache reuses. With a size
// hint in bufs the object is read straight into that buffer; without one
// it is read in one round trip into a pooled buffer of the largest chunk's
// size and copied into one of its own size (see readObjectInto).
func (s *Store) GetBuffered(ctx context.Context, id chunkstore.ID, bufs chunkstore.Buffers) (data, buf []byte, err error) {
	err = s.c.call(ctx, func() error {
		var err error
		data, buf, err = readObjectInto(s.c.chunks, id.String(), bufs)
		return err
	})
	if err != nil && buf != nil {
		// Read, but the caller's ctx ended meanwhile: nothing is lent.
		bufs.Put(buf)
		data, buf = nil, nil
	}
	switch {
	case err == nil:
		return data, buf, nil
	case errors.Is(err, librados.ErrNotFound):
		return nil, nil, chunkstore.NotFound(id)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, nil, err
	}
	return nil, nil, s.errorf("get", id, err)
}

// Has reports whether id is stored.
func (s *Store) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	_, ok, err := s.stat(ctx, id)
	return ok, err
}

// stat returns the size of id's object, and false if there is none.
func (s *Store) stat(ctx context.Context, id chunkstore.ID) (int64, bool, error) {
	var st librados.ObjectStat
	err := s.c.call(ctx, func() error {
		var err error
		st, err = s.c.chunks.Stat(id.String())
		return err
	})
	switch {
	case err == nil:
		return int64(st.Size), true, nil
	case errors.Is(err, librados.ErrNotFound):
		return 0, false, nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 0, false, err
	}
	return 0, false, s.errorf("stat", id, err)
}

// Delete removes id.
func (s *Store) Delete(ctx context.Context, id chunkstore.ID) error {
	err := s.c.call(ctx, func() error { return s.c.chunks.Delete(id.String()) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, librados.ErrNotFound):
		return chunkstore.NotFound(id)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return s.errorf("delete", id, err)
}

// List lists the chunks namespace and stats each object for its size. RADOS
// listings give names only, so the stats run in parallel, in the
// connection's slots, while fn is called from this goroutine, one Info at a
// time. Chunks deleted while listing are left out; names that are not IDs
// are skipped.
func (s *Store) List(ctx context.Context, fn func(chunkstore.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	ids := make(chan chunkstore.ID, s.c.opts.Concurrency)
	infos := make(chan chunkstore.Info, s.c.opts.Concurrency)
	g.Go(func() error {
		defer close(ids)
		return s.listIDs(gctx, func(id chunkstore.ID) error {
			select {
			case ids <- id:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	var stats sync.WaitGroup
	for range s.c.opts.Concurrency {
		stats.Add(1)
		g.Go(func() error {
			defer stats.Done()
			for id := range ids {
				size, ok, err := s.stat(gctx, id)
				if err != nil {
					return err
				}
				if !ok {
					continue // deleted while we listed
				}
				select {
				case infos <- chunkstore.Info{ID: id, Size: size}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	go func() {
		stats.Wait()
		close(infos)
	}()

	var fnErr error
	for info := range infos {
		if fnErr != nil {
			continue // drain, so the workers can finish
		}
		if fnErr = fn(info); fnErr != nil {
			cancel()
		}
	}
	err := g.Wait()
	switch {
	case fnErr != nil:
		return fnErr
	case ctx.Err() != nil:
		// The caller's context ended the listing (cancel is only
		// called for fnErr).
		return ctx.Err()
	}
	return err
}

// listIDs calls fn with the ID of each object in the chunks namespace. Each
// step of the listing may fetch a batch from the OSDs, so each takes a slot.
func (s *Store) listIDs(ctx context.Context, fn func(chunkstore.ID) error) error {
	var it *librados.Iter
	if err := s.c.call(ctx, func() error {
		var err error
		it, err = s.c.chunks.Iter()
		return err
	}); err != nil {
		return s.listError(err)
	}
	defer func() {
		// The iterator lives in the IOContext: after Close it is gone
		// with it.
		if s.c.enter() == nil {
			it.Close()
			s.c.leave()
		}
	}()
	for {
		var name string
		var more bool
		if err := s.c.call(ctx, func() error {
			more = it.Next()
			name = it.Value()
			return it.Err()
		}); err != nil {
			return s.listError(err)
		}
		if !more {
			return nil
		}
		id, err := chunkstore.ParseID(name)
		if err != nil || id.String() != name {
			continue
		}
		if err := fn(id); err != nil {
			return err
		}
	}
}

func (s *Store) listError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("store %s: list namespace %q: %w", s.c.opts.location(), s.c.opts.chunksNamespace(), err)
}

// touchXattr is the object attribute Touch sets. Its value is the time, for
// people looking at the pool; gc goes by the object's mtime, which every
// write, this one included, sets.
const touchXattr = "casfs.touched"

var _ chunkstore.Toucher = (*Store)(nil)

// Touch implements chunkstore.Toucher: one write op that asserts the object
// exists and sets an attribute, which moves its mtime (and version) on.
func (s *Store) Touch(ctx context.Context, id chunkstore.ID) (bool, error) {
	err := s.c.call(ctx, func() error {
		op := librados.CreateWriteOp()
		defer op.Release()
		op.AssertExists()
		op.SetXattr(touchXattr, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		return op.Operate(s.c.chunks, id.String(), librados.OperationNoFlag)
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, librados.ErrNotFound):
		return false, nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, err
	}
	return false, s.errorf("touch", id, err)
}

// DeleteIfIdle implements chunkstore.Toucher. It stats the object, which
// gives its mtime and version, and if the mtime is before since removes it
// in one op guarded by that version: a Touch or Put in between changes the
// version and the remove does nothing. rados_stat gives whole seconds, so
// an mtime counts as idle only if it is a full second before since.
func (s *Store) DeleteIfIdle(ctx context.Context, id chunkstore.ID, since time.Time) (bool, error) {
	deleted := false
	err := s.c.WithIOContext(ctx, s.c.opts.chunksNamespace(), func(io *librados.IOContext) error {
		st, err := io.Stat(id.String())
		if err != nil {
			return err
		}
		ver, err := io.GetLastVersion()
		if err != nil {
			return err
		}
		if !st.ModTime.Add(time.Second).Before(since) {
			return nil
		}
		op := librados.CreateWriteOp()
		defer op.Release()
		op.AssertVersion(ver)
		op.Remove()
		err = op.Operate(io, id.String(), librados.OperationNoFlag)
		switch errno(err) {
		case 0:
			deleted = true
			return nil
		case syscall.ERANGE, syscall.EOVERFLOW, syscall.ENOENT:
			return nil // changed (touched, put again) or gone since the stat
		}
		return err
	})
	switch {
	case err == nil:
		return deleted, nil
	case errors.Is(err, librados.ErrNotFound):
		return false, chunkstore.NotFound(id)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, err
	}
	return false, s.errorf("delete idle", id, err)
}

// Purge removes every object of the store at opts: its config, anything
// else in its namespace (a catalog) and all its chunks. It is for tests and
// throwaway stores; nothing in casfs calls it.
func Purge(ctx context.Context, opts Options) error {
	c, err := Connect(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, ns := range []string{c.opts.Namespace, c.opts.chunksNamespace()} {
		err := c.WithIOContext(ctx, ns, func(io *librados.IOContext) error {
			var names []string
			if err := io.ListObjects(func(oid string) { names = append(names, oid) }); err != nil {
				return err
			}
			for _, oid := range names {
				if err := io.Delete(oid); err != nil && !errors.Is(err, librados.ErrNotFound) {
					return fmt.Errorf("delete %s: %w", oid, err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("purge %s namespace %q: %w", c.opts.location(), ns, err)
		}
	}
	return nil
}

// Sync only checks ctx: a Put returns once every replica has the object
// (see the package documentation), so there is nothing left to make durable.
func (s *Store) Sync(ctx context.Context) error { return ctx.Err() }

// Properties describes the store.
func (s *Store) Properties() chunkstore.Properties {
	return chunkstore.Properties{
		Name:         s.c.opts.location(),
		Concurrency:  s.c.opts.Concurrency,
		MaxChunkSize: maxObjectSize,
	}
}

// Close closes the store's connection. Calling it again does nothing.
func (s *Store) Close() error {
	s.c.Close()
	return nil
}
