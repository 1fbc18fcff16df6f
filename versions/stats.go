package versions

import (
	"context"
	"fmt"

	"github.com/casfs/casfs/chunkstore"
)

// Stats describes how much a store holds and how well it deduplicates.
type Stats struct {
	Files    int   // regular files with at least one version, live or deleted
	Versions int   // versions of all files
	Logical  int64 // sum of the sizes of all versions: what plain copies would take
	Unique   int64 // bytes of the distinct chunks versions reference (holes cost nothing)
	Chunks   int   // chunks in the store, recipes included
	Stored   int64 // bytes the store keeps for them, after compression
}

// DedupRatio is Logical / Unique: how many times each stored byte is used.
func (s Stats) DedupRatio() float64 { return ratio(s.Logical, s.Unique) }

// CompressionRatio is Unique / Stored.
func (s Stats) CompressionRatio() float64 { return ratio(s.Unique, s.Stored) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// Stats reads every version's recipe and lists the store.
func (r *Repo) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	files := map[Ino]struct{}{}
	seenRecipe := map[chunkstore.ID]struct{}{}
	seenChunk := map[chunkstore.ID]struct{}{}
	err := r.cat.Walk(ctx, func(ino Ino, v Version) error {
		files[ino] = struct{}{}
		st.Versions++
		st.Logical += v.Size
		if _, ok := seenRecipe[v.Recipe]; ok {
			return nil
		}
		seenRecipe[v.Recipe] = struct{}{}
		rec, err := r.LoadRecipe(ctx, v.Recipe)
		if err != nil {
			return fmt.Errorf("inode %d version %s: %w", ino, v.ID, err)
		}
		for _, e := range rec.Extents {
			if _, ok := seenChunk[e.ID]; !ok {
				seenChunk[e.ID] = struct{}{}
				st.Unique += e.Size
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	st.Files = len(files)
	err = r.chunks.List(ctx, func(i chunkstore.Info) error {
		st.Chunks++
		st.Stored += i.Size
		return nil
	})
	return st, err
}
