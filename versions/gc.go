package versions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// GCStats says what a garbage collection did.
type GCStats struct {
	Chunks       int   // chunks in the store before
	Live         int   // chunks some version references (recipes included)
	Deleted      int   // chunks deleted
	DeletedBytes int64 // stored bytes freed
	Kept         int   // unreferenced chunks kept because a commit was using them
	// Recent is unreferenced chunks of a shared store kept because they
	// were put or touched within the gc margin: a commit elsewhere may be
	// about to use them. A later gc deletes them if they stay unused.
	Recent int
}

// GCProgress is told, during the sweep, how many candidate chunks there are
// and then each one done.
type GCProgress struct {
	Total func(n int64)
	Done  func(n int64)
}

// GC deletes every chunk no version references. It lists the store first
// and marks from the catalog second, so a chunk stored after the listing is
// never a candidate; chunks that commits in progress rely on are skipped (see
// inflight). If any recipe cannot be read the mark is incomplete and GC stops
// before deleting anything: a lost recipe must not take data with it.
func (r *Repo) GC(ctx context.Context, prog GCProgress) (GCStats, error) {
	r.gcMu.Lock()
	defer r.gcMu.Unlock()
	r.guard.startGC()
	defer r.guard.endGC()
	// On a shared store, commits on other machines are protected by time
	// (see DefaultGCMargin): only chunks idle since before idleSince go.
	toucher, shared := r.toucher()
	start := time.Now()
	idleSince := start.Add(-r.margin)
	if f, ok := r.cat.(GCFencer); ok && shared {
		if err := f.FenceGC(ctx, start); err != nil {
			return GCStats{}, err
		}
	}

	var st GCStats
	var candidates []chunkstore.Info
	if err := r.chunks.List(ctx, func(i chunkstore.Info) error {
		candidates = append(candidates, i)
		return nil
	}); err != nil {
		return st, fmt.Errorf("listing chunks: %w", err)
	}
	st.Chunks = len(candidates)

	live, err := r.liveSet(ctx)
	if err != nil {
		return st, fmt.Errorf("marking live chunks (nothing deleted): %w", err)
	}
	st.Live = len(live)

	if prog.Total != nil {
		prog.Total(int64(len(candidates)))
	}
	for _, c := range candidates {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if prog.Done != nil {
			prog.Done(1)
		}
		if _, ok := live[c.ID]; ok {
			continue
		}
		recent := false
		deleted, err := r.guard.deleteIfFree(c.ID, func() error {
			if !shared {
				return r.chunks.Delete(ctx, c.ID)
			}
			del, err := toucher.DeleteIfIdle(ctx, c.ID, idleSince)
			recent = !del
			return err
		})
		switch {
		case errors.Is(err, chunkstore.ErrNotFound):
			continue // gone already: a retried gc
		case err != nil:
			return st, fmt.Errorf("deleting chunk %s: %w", c.ID, err)
		case deleted && recent:
			st.Recent++
		case deleted:
			st.Deleted++
			st.DeletedBytes += c.Size
		default:
			st.Kept++
		}
	}
	return st, nil
}

// liveSet is every chunk referenced by a version: the recipes and their
// extents. Each recipe is read once even if many versions share it.
func (r *Repo) liveSet(ctx context.Context) (map[chunkstore.ID]struct{}, error) {
	live := map[chunkstore.ID]struct{}{}
	return live, r.cat.Walk(ctx, func(ino Ino, v Version) error {
		if _, ok := live[v.Recipe]; ok {
			return nil
		}
		rec, err := r.LoadRecipe(ctx, v.Recipe)
		if err != nil {
			return fmt.Errorf("inode %d version %s: %w", ino, v.ID, err)
		}
		live[v.Recipe] = struct{}{}
		for _, e := range rec.Extents {
			live[e.ID] = struct{}{}
		}
		return nil
	})
}
