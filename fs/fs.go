package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/casfs/casfs/cache"
	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// Options configure a filesystem.
type Options struct {
	// StagingDir holds the staging files of files open for writing. It is
	// created if missing and emptied at start: nothing in it is ever the
	// only copy of committed data.
	StagingDir string
	// CacheBytes bounds the in-memory chunk cache.
	CacheBytes int64
	// ReadAhead is how many chunks after the one being read are prefetched
	// when a file is read sequentially.
	ReadAhead int
	// StoreAhead is how far a file being written grows past its last cut
	// point before the chunks written so far are stored in the background
	// (DefaultStoreAhead if zero; negative: never, all at close).
	StoreAhead int64
}

// DefaultStoreAhead is Options.StoreAhead's default: rounds that store many
// chunks, and a close that finds only the last few dozen MiB to chunk.
const DefaultStoreAhead = 32 << 20

// DefaultCacheBytes is the chunk cache size when Options leave it zero. A
// random read of a chunk that is not cached costs reading and verifying the
// whole chunk (~1 MiB) for perhaps 4 KiB, so the cache should hold the
// working set of random readers (databases, images): 1 GiB by default.
const DefaultCacheBytes = 1 << 30

// FS is one mounted store.
type FS struct {
	repo  *versions.Repo
	cat   versions.Catalog
	cache *cache.Store
	opts  Options

	// open tracks file nodes with a staging file, so Shutdown can commit
	// them all before the store closes; staged indexes the newest of them
	// by inode, so a lookup answers with its unsaved size (see newChild).
	// They differ only when the kernel forgot a node whose staging file
	// stayed (its last commit failed) and a new node of that file got
	// one too: Shutdown commits both.
	mu     sync.Mutex
	open   map[*fileNode]struct{}
	staged map[versions.Ino]*fileNode

	// aheadMerged counts rounds of storing ahead whose chunks became a
	// file's prefix, and aheadHook (if set) runs between a round's storing
	// and its merge: for tests.
	aheadMerged atomic.Int64
	aheadHook   func(base, end int64)
	// copied counts bytes that copy_file_range copied in the server, and
	// wholeCopies the copies that took their source's recipe (copyWhole).
	copied      atomic.Int64
	wholeCopies atomic.Int64

	// noXattr remembers for a second which extended attributes of which
	// inodes are absent. The kernel asks for security.capability before
	// every write (to drop file capabilities), and on a rados:// store
	// each ask is a round trip to an OSD that the write waits for: 1 MiB
	// writes ran at a third of the pool's speed. A second is the mount's
	// attribute timeout too, so another mount's setcap shows as late as a
	// chmod would; this mount's Setxattr forgets the entry at once.
	noXattr *expirable.LRU[xattrKey, struct{}]

	// bg counts the goroutines that outlive the request that started them
	// (rounds of storing ahead), for Close.
	bg sync.WaitGroup
}

// New returns a filesystem over repo. Call Root for the root node, and
// Shutdown then Close before closing repo.
func New(repo *versions.Repo, opts Options) (*FS, error) {
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.ReadAhead <= 0 {
		// Sixteen chunks (~16 MiB) in flight per sequential reader keep
		// the disk's queue full on a cold read and both cores verifying
		// ahead of the reader on a warm one.
		opts.ReadAhead = 16
	}
	if opts.StoreAhead == 0 {
		opts.StoreAhead = DefaultStoreAhead
	}
	if opts.StagingDir == "" {
		return nil, fmt.Errorf("no staging directory")
	}
	if err := os.MkdirAll(opts.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(opts.StagingDir, "stage-*"))
	for _, p := range old {
		os.Remove(p)
	}
	return &FS{
		repo:   repo,
		cat:    repo.Catalog(),
		cache:  cache.Wrap(repo.Chunks(), opts.CacheBytes),
		opts:   opts,
		open:   map[*fileNode]struct{}{},
		staged: map[versions.Ino]*fileNode{},
		// 4096 entries: the files being written at once, and then some.
		noXattr: expirable.NewLRU[xattrKey, struct{}](4096, nil, time.Second),
	}, nil
}

// xattrKey names one extended attribute of one inode.
type xattrKey struct {
	ino  versions.Ino
	name string
}

// Root returns the root directory node.
func (f *FS) Root() gofs.InodeEmbedder {
	return &dirNode{node: node{fs: f, ino: versions.RootIno}}
}

// Shutdown commits every file that has uncommitted changes. The mount calls
// it when it is asked to stop (before unmounting) and after the kernel let go.
func (f *FS) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	nodes := make([]*fileNode, 0, len(f.open))
	for n := range f.open {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	var firstErr error
	for _, n := range nodes {
		if err := n.commit(ctx, true); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Close waits for the work the filesystem does in the background (rounds
// of storing ahead, the chunk cache's prefetches), which would otherwise
// reach repo's store after it is closed, and stops the cache fetching more.
// Call it once the kernel has let go and the last Shutdown returned; the
// filesystem serves no more reads that need the store after it.
func (f *FS) Close() {
	f.bg.Wait()
	f.cache.Cache.Close()
}

// loadRecipe fetches a recipe through the chunk cache.
func (f *FS) loadRecipe(ctx context.Context, id chunkstore.ID) (*recipe.Recipe, error) {
	var ref cache.Ref
	defer func() { ref.Release() }()
	return recipe.Load(ctx, id, func(ctx context.Context, id chunkstore.ID) ([]byte, error) {
		var err error
		ref, err = f.cache.Acquire(ctx, id)
		return ref.Bytes(), err // Decode copies what it keeps
	})
}

// readRecipe serves a read of rec, and prefetches the chunks after it when
// the reader is sequential (its read starts where its last one ended).
//
// The reply is the cached chunks' own bytes (readResult), which go-fuse
// hands to the kernel with one writev, rather than a copy in dest: a 1 MiB
// read costs no copy in casfs.
func (f *FS) readRecipe(ctx context.Context, rec *recipe.Recipe, dest []byte, off int64, seq bool, what string) (fuse.ReadResult, syscall.Errno) {
	r := readResults.Get().(*readResult)
	place := f.place(rec, seq)
	vecs, n, err := rec.Slices(ctx, off, len(dest), f.fetchInto(r, place), r.vecs)
	r.vecs, r.size = vecs, n
	if err != nil && !errors.Is(err, io.EOF) {
		r.Done()
		return nil, toErrno(err, "read", "file", what, "offset", off)
	}
	if seq && f.opts.ReadAhead > 0 {
		f.prefetch(rec, off+int64(n), place)
	}
	return r, 0
}

// place is where in the chunk cache a read of rec puts what it fetches. A
// sequential reader of a file larger than the cache streams it: its chunks
// could not all stay cached for a second pass anyway, and would only push
// out what other readers use. One of a smaller file that is still more than
// the stream window scans it: the first pass (a cp, a checksum) fills what
// room the cache has free, then goes through the window, and a second
// caches the rest of the file. Everything else, random
// readers and small files, goes in the main LRU. See cache.Cache.
func (f *FS) place(rec *recipe.Recipe, seq bool) cache.Place {
	switch c := f.cache.Cache; {
	case !seq:
		return cache.PlaceMain
	case rec.Size > c.Max():
		return cache.PlaceStream
	case rec.Size > c.StreamMax():
		return cache.PlaceScan
	}
	return cache.PlaceMain
}

// prefetch starts fetching the chunks of the ReadAhead extents from off on
// that are neither cached nor being fetched. Each sequential read calls it,
// so the window slides with the reader: usually only the one or two chunks
// that just entered the window start, and a window the store could not
// take at once (the prefetch limit) fills as earlier fetches finish.
// They go where p says.
//
// It also stops at half the room the chunks have where they go (the
// stream window, or the cache): with chunks large for the cache (4 MiB
// chunks through the 64 MiB window, say), sixteen of them would fill it,
// and chunks fetched ahead would push out the ones the reader is about to
// read, and those were fetched again (eight times each, in a test).
func (f *FS) prefetch(rec *recipe.Recipe, off int64, p cache.Place) {
	room := f.cache.Cache.Max()
	if p != cache.PlaceMain {
		room = f.cache.Cache.StreamMax()
	}
	var bytes int64
	for i, e := range rec.ExtentsInRange(off, rec.Size-off) {
		if bytes += e.Size; i >= f.opts.ReadAhead || (i > 0 && bytes > room/2) {
			break
		}
		f.cache.PrefetchIn(e.ID, e.Size, p)
	}
}

// caller returns the uid and gid of the process behind a request.
func caller(ctx context.Context) (uint32, uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return uint32(os.Getuid()), uint32(os.Getgid())
}

// fillAttr copies a catalog Attr into a FUSE attribute.
func fillAttr(a versions.Attr, out *fuse.Attr) {
	out.Ino = uint64(a.Ino)
	out.Mode = a.Mode
	out.Size = uint64(a.Size)
	// What the file takes in chunks, so that du adds up stored bytes and
	// cp and tar, which compare st_blocks with the size, look for holes.
	out.Blocks = (uint64(max(a.Size-a.Holes, 0)) + 511) / 512
	out.Blksize = 1 << 16
	out.Nlink = a.Nlink
	out.Rdev = a.Rdev
	out.Owner = fuse.Owner{Uid: a.Uid, Gid: a.Gid}
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
}

var now = time.Now

// uninterruptible detaches a request's context from FUSE interrupts. The
// kernel interrupts a request whenever its caller gets a signal, including
// ones the program handles and Go's own preemption signals; answering EINTR
// then fails a create, a rename or a close (whose commit must complete for
// close to mean "saved"), and few programs retry EINTR from a regular file.
// So every operation runs to completion; what could block for long (a
// remote store) is bounded by the store's own timeouts instead.
func uninterruptible(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// sequential judges whether a read at off continues one that ended at
// lastEnd. The kernel keeps several read-ahead requests in flight, which
// may arrive out of order, so "near the last one, going forward" counts.
func sequential(lastEnd, off int64) bool {
	const slack = 8 << 20
	return off > 0 && off >= lastEnd-slack && off <= lastEnd+slack
}
