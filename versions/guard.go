package versions

import (
	"sync"

	"github.com/casfs/casfs/chunkstore"
)

// inflight protects chunks that commits in progress rely on from a
// concurrent garbage collection in the same process.
//
// A commit holds every chunk ID before it asks the store whether the chunk
// exists, and releases them once its version entry is written (or it gave
// up). gc deletes a chunk only under mu and only if it is neither held nor
// was released since gc started: a chunk released during gc may belong to a
// version committed after gc read the catalog, which gc's mark did not see.
//
// The races this closes: (1) commit sees the chunk present, gc deletes it,
// commit writes a version pointing at nothing — impossible, since the hold
// happens before the check and gc checks holds under the same lock as its
// delete; if gc deleted first, the commit's check sees it missing and puts it
// again. (2) commit finishes between gc's mark and sweep — its chunks land in
// recent and are skipped.
type inflight struct {
	mu     sync.Mutex
	held   map[chunkstore.ID]int
	gcs    int                        // collections running
	recent map[chunkstore.ID]struct{} // released while a gc ran
}

func newInflight() *inflight {
	return &inflight{held: map[chunkstore.ID]int{}, recent: map[chunkstore.ID]struct{}{}}
}

func (g *inflight) hold(id chunkstore.ID) {
	g.mu.Lock()
	g.held[id]++
	g.mu.Unlock()
}

func (g *inflight) release(ids []chunkstore.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		if g.held[id]--; g.held[id] <= 0 {
			delete(g.held, id)
		}
		if g.gcs > 0 {
			g.recent[id] = struct{}{}
		}
	}
}

func (g *inflight) startGC() {
	g.mu.Lock()
	g.gcs++
	g.mu.Unlock()
}

func (g *inflight) endGC() {
	g.mu.Lock()
	if g.gcs--; g.gcs == 0 {
		clear(g.recent)
	}
	g.mu.Unlock()
}

// deleteIfFree runs del for id unless a commit holds it or released it
// during this gc. del runs under the lock, so no commit can take a hold and
// check for the chunk in between.
func (g *inflight) deleteIfFree(id chunkstore.ID, del func() error) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held[id] > 0 {
		return false, nil
	}
	if _, ok := g.recent[id]; ok {
		return false, nil
	}
	return true, del()
}
