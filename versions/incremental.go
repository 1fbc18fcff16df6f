package versions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/casfs/casfs/recipe"
)

// WriteFrom commits the size bytes of src as a new version of ino, reusing
// prefix (extents of an earlier version that cover bytes [0, base) which
// have not changed since) and chunking only [base, size).
//
// It relies on a property of the chunkers: every extent start in a recipe is
// a cut point, and chunking restarted at a cut point finds the same
// boundaries as chunking from the start. So an append or an edit near the
// end of a large file costs the chunks after the edit, not the whole file,
// and the recipe is the same as a full Write would make. base must be a cut
// point (0, or the start of an extent of a recipe of this store) and prefix
// must only hold extents ending at or before it.
//
// It returns the version and its recipe. The next call can reuse that
// recipe's extents except the last, whose end is the end of the file rather
// than a cut point (see Reusable).
func (r *Repo) WriteFrom(ctx context.Context, ino Ino, src io.ReaderAt, size int64, prefix []recipe.Extent, base int64, mtime time.Time) (Version, *recipe.Recipe, error) {
	if base > size || (len(prefix) > 0 && prefix[len(prefix)-1].End() > base) {
		return Version{}, nil, fmt.Errorf("WriteFrom: prefix ending at %d does not fit base %d and size %d", prefixEnd(prefix), base, size)
	}
	started := time.Now()
	rec, rid, held, err := r.storeVersion(ctx, io.NewSectionReader(src, base, size-base), prefix, base, nil)
	if errors.Is(err, errChunkGone) && len(prefix) > 0 && ctx.Err() == nil {
		// A chunk of the reused prefix was collected (its versions were
		// removed, then gc ran elsewhere): chunk the whole file instead.
		r.guard.release(held)
		rec, rid, held, err = r.storeVersion(ctx, io.NewSectionReader(src, 0, size), nil, 0, nil)
	}
	defer func() { r.guard.release(held) }()
	if err != nil {
		return Version{}, nil, err
	}
	v, err := r.commit(ctx, ino, Version{Recipe: rid, Size: rec.Size, Holes: rec.Holes(), Mtime: mtime}, held, started)
	if errors.Is(err, errChunkGone) && ctx.Err() == nil {
		// A gc on another machine overtook this commit and took chunks
		// it had stored (see Repo.commit). src can be read again: store
		// all of it anew, once.
		r.guard.release(held)
		started = time.Now()
		rec, rid, held, err = r.storeVersion(ctx, io.NewSectionReader(src, 0, size), nil, 0, nil)
		if err != nil {
			return Version{}, nil, err
		}
		v, err = r.commit(ctx, ino, Version{Recipe: rid, Size: rec.Size, Holes: rec.Holes(), Mtime: mtime}, held, started)
	}
	return v, rec, err
}

// Reusable returns the part of rec a later WriteFrom of the same file may
// reuse, and where chunking must restart: every extent but the last.
func Reusable(rec *recipe.Recipe) ([]recipe.Extent, int64) {
	if rec == nil || len(rec.Extents) == 0 {
		return nil, 0
	}
	n := len(rec.Extents) - 1
	return rec.Extents[:n:n], rec.Extents[n].Offset
}

// CutPrefix shortens a reusable prefix so that it covers no byte at or
// after off (a write there changed them), and returns the new restart
// point: the end of the last extent kept.
func CutPrefix(prefix []recipe.Extent, off int64) ([]recipe.Extent, int64) {
	i := len(prefix)
	for i > 0 && prefix[i-1].End() > off {
		i--
	}
	return prefix[:i:i], prefixEnd(prefix[:i])
}

func prefixEnd(p []recipe.Extent) int64 {
	if len(p) == 0 {
		return 0
	}
	return p[len(p)-1].End()
}
