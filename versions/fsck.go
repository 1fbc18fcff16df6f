package versions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/casfs/casfs/chunkstore"
)

// Problem is one thing fsck found wrong, with enough to find it.
type Problem struct {
	Path    string
	Ino     Ino
	Version VersionID
	Chunk   chunkstore.ID // zero when the problem is not one chunk's
	Offset  int64         // of the chunk in the file, -1 for a recipe
	Err     error
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s (inode %d) version %s: ", p.Path, p.Ino, p.Version)
	switch {
	case p.Chunk.IsZero():
	case p.Offset < 0:
		s += fmt.Sprintf("recipe chunk %s: ", p.Chunk)
	default:
		s += fmt.Sprintf("chunk %s at offset %d: ", p.Chunk, p.Offset)
	}
	return s + p.Err.Error()
}

// errMissing is a Problem's error for a chunk not in the store: short for
// the report, and still matching chunkstore.ErrNotFound.
var errMissing = fmt.Errorf("missing: %w", chunkstore.ErrNotFound)

// FsckStats counts what fsck looked at.
type FsckStats struct {
	Versions int
	Chunks   int // distinct chunks read and verified
	Bytes    int64
	Problems int
}

// Fsck checks that every version's recipe decodes and every chunk it
// references exists and verifies, reading each distinct chunk once. It calls
// report for each problem and carries on; the error is only for failures
// that stop the check itself (the catalog cannot be read, ctx done).
func (r *Repo) Fsck(ctx context.Context, report func(Problem), progress Progress) (FsckStats, error) {
	var st FsckStats
	// The catalog's own structure first: entries against back links, link
	// counts, deleted lists, HEAD against the newest version.
	if c, ok := r.cat.(interface{ Check(context.Context) error }); ok {
		switch err := c.Check(ctx); {
		case err == nil:
		case ctx.Err() != nil:
			return st, ctx.Err()
		case errors.Is(err, ErrInconsistent):
			st.Problems++
			report(Problem{Path: "(catalog)", Offset: -1, Err: err})
		default:
			// Not damage: the check could not get a consistent read (a
			// shared store that other machines keep changing). The
			// versions and chunks are still checked below.
			slog.Warn("fsck: skipped the catalog's consistency check", "err", err)
		}
	}
	paths, err := r.Paths(ctx)
	if err != nil {
		return st, fmt.Errorf("walking the namespace: %w", err)
	}
	checked := map[chunkstore.ID]error{}
	check := func(id chunkstore.ID) error {
		if err, ok := checked[id]; ok {
			return err
		}
		b, err := r.chunks.Get(ctx, id)
		if err == nil {
			st.Chunks++
			st.Bytes += int64(len(b))
			if progress != nil {
				progress(int64(len(b)))
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		checked[id] = err
		return err
	}
	err = r.cat.Walk(ctx, func(ino Ino, v Version) error {
		st.Versions++
		p := paths[ino]
		if p == "" {
			p = fmt.Sprintf("(unreachable inode %d)", ino)
		}
		bad := func(id chunkstore.ID, off int64, err error) {
			st.Problems++
			report(Problem{Path: p, Ino: ino, Version: v.ID, Chunk: id, Offset: off, Err: err})
		}
		if err := check(v.Recipe); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			bad(v.Recipe, -1, err)
			return nil
		}
		rec, err := r.LoadRecipe(ctx, v.Recipe)
		if err != nil {
			bad(v.Recipe, -1, err)
			return nil
		}
		if rec.Size != v.Size {
			bad(chunkstore.ID{}, 0, fmt.Errorf("recipe says %d bytes, version entry %d", rec.Size, v.Size))
		}
		for _, e := range rec.Extents {
			if err := check(e.ID); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(err, chunkstore.ErrNotFound) {
					err = errMissing
				}
				bad(e.ID, e.Offset, err)
			}
		}
		return nil
	})
	return st, err
}
