package fs

import (
	"context"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/casfs/casfs/cache"
	"github.com/casfs/casfs/chunkstore"
)

// readResult is the reply to a read of committed data: the pieces of the
// cached chunks it covers, held (cache.Ref) until go-fuse has written them
// to the kernel and calls Done. go-fuse sends a result with a Slices method
// with one writev of the pieces (as it does fuse.ReadResultVector), so
// casfs copies nothing to answer a read, and the chunks' buffers are not
// reused for other chunks while the kernel still has to copy from them.
type readResult struct {
	vecs [][]byte
	refs []cache.Ref
	size int
}

var readResults = sync.Pool{New: func() any {
	return &readResult{vecs: make([][]byte, 0, 4), refs: make([]cache.Ref, 0, 4)}
}}

var _ fuse.ReadResult = (*readResult)(nil)

// Slices makes go-fuse write the pieces with writev.
func (r *readResult) Slices() ([][]byte, fuse.Status) { return r.vecs, fuse.OK }

// Bytes is for go-fuse's paths that want one buffer.
func (r *readResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, v := range r.vecs {
		buf = append(buf, v...)
	}
	return buf, fuse.OK
}

func (r *readResult) Size() int { return r.size }

// Done releases the chunks. go-fuse calls it once, after the reply is
// written (or dropped).
func (r *readResult) Done() {
	for _, ref := range r.refs {
		ref.Release()
	}
	clear(r.vecs)
	clear(r.refs)
	r.vecs, r.refs, r.size = r.vecs[:0], r.refs[:0], 0
	readResults.Put(r)
}

// fetchInto returns a recipe.Fetch that acquires chunks from the cache and
// keeps their refs in r.
func (f *FS) fetchInto(r *readResult, p cache.Place) func(context.Context, chunkstore.ID) ([]byte, error) {
	return func(ctx context.Context, id chunkstore.ID) ([]byte, error) {
		ref, err := f.cache.AcquireIn(ctx, id, p)
		if err != nil {
			return nil, err
		}
		r.refs = append(r.refs, ref)
		return ref.Bytes(), nil
	}
}
