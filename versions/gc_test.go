package versions_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/mem"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// checkGC runs gc and checks that it deleted exactly the chunks that no
// version references, as worked out independently of gc by r.live.
func checkGC(t *testing.T, r *testRepo) versions.GCStats {
	t.Helper()
	before := r.stored()
	live := r.live()
	st := r.gc()
	after := r.stored()
	var missing, kept []chunkstore.ID
	for id := range live {
		if !after[id] {
			missing = append(missing, id)
		}
	}
	for id := range after {
		if !live[id] {
			kept = append(kept, id)
		}
	}
	if len(missing) > 0 || len(kept) > 0 {
		t.Fatalf("gc left %d chunks for %d live: %d live chunks deleted, %d unreferenced kept", len(after), len(live), len(missing), len(kept))
	}
	if want := len(before) - len(after); st.Deleted != want || st.Chunks != len(before) || st.Live != len(live) {
		t.Fatalf("gc stats %+v; store went from %d to %d chunks, %d live", st, len(before), len(after), len(live))
	}
	return st
}

// model is the content every committed version should read back.
type model map[versions.VersionID][]byte

// check reads every version of the catalog and compares it with m, and
// checks that m has no version the catalog lacks.
func (m model) check(t *testing.T, r *testRepo) {
	t.Helper()
	seen := 0
	err := r.Catalog().Walk(context.Background(), func(ino versions.Ino, v versions.Version) error {
		want, ok := m[v.ID]
		if !ok {
			return fmt.Errorf("inode %d has version %s that nothing committed", ino, v.ID)
		}
		seen++
		got, err := r.read(v)
		if err != nil {
			return fmt.Errorf("inode %d version %s: %w", ino, v.ID, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("inode %d version %s: content differs at %d", ino, v.ID, firstDiff(got, want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(m) {
		t.Fatalf("catalog has %d versions, %d committed and not removed", seen, len(m))
	}
}

// TestGCDeletesUnreferenced removes versions and files step by step and
// checks after each step that gc deletes exactly the chunks nothing uses any
// more, that everything left reads back, and that a second gc does nothing.
func TestGCDeletesUnreferenced(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, repoOptions{cfg: smallConfig()})
	cat := r.Catalog()
	m := model{}
	write := func(ino versions.Ino, data []byte) versions.Version {
		v := r.write(ino, data)
		m[v.ID] = data
		return v
	}
	base := randomBytes(50, 400*kiB)
	f1 := r.create("/f1")
	f1v1 := write(f1.Ino, base)
	f1v2 := write(f1.Ino, concat(base[:200*kiB], randomBytes(51, 100*kiB)))
	f2 := r.create("/dir/f2")
	f2v1 := write(f2.Ino, concat(base, []byte("and a tail"))) // shares f1v1's chunks
	f3 := r.create("/dir/f3")
	write(f3.Ino, randomBytes(52, 300*kiB))
	write(f3.Ino, randomBytes(53, 300*kiB))
	f4 := r.create("/f4")
	f4v1 := write(f4.Ino, randomBytes(54, 100*kiB))

	dir := r.mustResolve("/dir")
	shared := map[chunkstore.ID]bool{}
	in1 := map[chunkstore.ID]bool{}
	for _, e := range r.recipe(f1v1).Extents {
		in1[e.ID] = true
	}
	for _, e := range r.recipe(f2v1).Extents {
		if in1[e.ID] {
			shared[e.ID] = true
		}
	}
	if len(shared) < 5 {
		t.Fatalf("f1 and f2 share %d chunks; the test needs several", len(shared))
	}

	steps := []struct {
		name      string
		do        func() error
		forget    []versions.Version // versions the step removes
		forgetIno versions.Ino       // or all versions of this inode
		deletes   bool               // whether gc must find something to delete
	}{
		{"nothing removed", func() error { return nil }, nil, 0, false},
		{"old version of f1", func() error { return cat.RemoveVersion(ctx, f1.Ino, f1v1.ID) }, []versions.Version{f1v1}, 0, true},
		{"HEAD of f4, its only version", func() error { return cat.RemoveVersion(ctx, f4.Ino, f4v1.ID) }, []versions.Version{f4v1}, 0, true},
		{"unlink f3, which keeps its history", func() error { return cat.Remove(ctx, dir.Ino, "f3", false) }, nil, 0, false},
		{"purge deleted f3", func() error { return cat.Purge(ctx, f3.Ino) }, nil, f3.Ino, true},
		{"purge f1, whose chunks f2 shares", func() error { return cat.Purge(ctx, f1.Ino) }, []versions.Version{f1v2}, 0, true},
		{"purge the directory with f2", func() error { return cat.Purge(ctx, dir.Ino) }, []versions.Version{f2v1}, 0, true},
	}
	for _, s := range steps {
		if s.forgetIno != 0 {
			for _, v := range r.versionsOf(s.forgetIno) {
				delete(m, v.ID)
			}
		}
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, v := range s.forget {
			delete(m, v.ID)
		}
		st := checkGC(t, r)
		if s.deletes != (st.Deleted > 0) {
			t.Fatalf("%s: gc deleted %d chunks", s.name, st.Deleted)
		}
		m.check(t, r)
		if s.name == "purge f1, whose chunks f2 shares" {
			for id := range shared {
				if !r.stored()[id] {
					t.Fatalf("%s: chunk %s, shared with f2, was deleted", s.name, id.Str())
				}
			}
		}
		// Again: nothing left to do.
		if st := checkGC(t, r); st.Deleted != 0 || st.Kept != 0 {
			t.Fatalf("%s: second gc %+v", s.name, st)
		}
		r.fsckClean()
	}
	if n := r.mem.Len(); n != 0 {
		t.Errorf("everything purged, %d chunks left: %v", n, keys(r.stored()))
	}
}

// TestGCCollectsInterruptedWrites: a Write that fails after storing chunks
// leaves them to gc, which deletes them and nothing else.
func TestGCCollectsInterruptedWrites(t *testing.T) {
	errRecipe := errors.New("injected: recipe put fails")
	cases := []struct {
		name string
		// arm makes the next write fail; ctx is the write's.
		arm  func(h *hookStore, cancel context.CancelFunc)
		want error
	}{
		{"recipe put fails", func(h *hookStore, _ context.CancelFunc) {
			h.set(hooks{beforePut: func(_ context.Context, _ chunkstore.ID, data []byte) error {
				if isRecipe(data) {
					return errRecipe
				}
				return nil
			}})
		}, errRecipe},
		{"canceled mid-write", func(h *hookStore, cancel context.CancelFunc) {
			var n int
			var mu sync.Mutex
			h.set(hooks{afterPut: func(chunkstore.ID) {
				mu.Lock()
				defer mu.Unlock()
				if n++; n == 5 {
					cancel()
				}
			}})
		}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &hookStore{}
			r := newRepo(t, repoOptions{cfg: smallConfig(), wrap: h.wrap})
			a := r.create("/f")
			old := randomBytes(60, 200*kiB)
			v1 := r.write(a.Ino, old)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.arm(h, cancel)
			_, err := r.Write(ctx, a.Ino, bytes.NewReader(randomBytes(61, miB)), time.Time{}, nil)
			h.set(hooks{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Write: %v, want %v", err, tc.want)
			}
			if vs := r.versionsOf(a.Ino); len(vs) != 1 || vs[0] != v1 {
				t.Fatalf("after a failed write the file has versions %v", vs)
			}
			orphans := len(r.stored()) - len(r.live())
			if orphans < 5 {
				t.Fatalf("the failed write left %d orphans; the test wants several", orphans)
			}
			if st := checkGC(t, r); st.Deleted != orphans {
				t.Fatalf("gc deleted %d of %d orphans", st.Deleted, orphans)
			}
			r.mustRead(v1, old)
			r.fsckClean()
		})
	}
}

// TestGCUnreadableRecipe: gc that cannot read a recipe cannot know what the
// version uses, so it deletes nothing at all.
func TestGCUnreadableRecipe(t *testing.T) {
	cases := []struct {
		name   string
		damage func([]byte) []byte
		want   error
	}{
		{"corrupt", flipLast, chunkstore.ErrCorrupt},
		{"missing", func([]byte) []byte { return nil }, chunkstore.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRepo(t, repoOptions{cfg: smallConfig()})
			a := r.create("/a")
			va := r.write(a.Ino, randomBytes(70, 200*kiB))
			b := r.create("/b")
			vb1 := r.write(b.Ino, randomBytes(71, 200*kiB))
			r.write(b.Ino, randomBytes(72, 200*kiB))
			if err := r.Catalog().RemoveVersion(ctx, b.Ino, vb1.ID); err != nil {
				t.Fatal(err)
			}
			r.damage(va.Recipe, tc.damage)
			before := r.stored()

			st, err := r.GC(ctx, versions.GCProgress{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("GC: %v, want an error matching %v", err, tc.want)
			}
			if after := r.stored(); len(after) != len(before) || st.Deleted != 0 {
				t.Fatalf("GC failed but deleted %d chunks (stats %+v)", len(before)-len(after), st)
			}
		})
	}
}

// TestGCConcurrentCommits runs writers that commit overlapping content,
// remove versions and write removed content again (so its chunks are
// deleted and put back), while gc runs in a loop. Every version committed
// and not removed must read back exactly, fsck must be clean, and a last gc
// must leave exactly the live chunks.
func TestGCConcurrentCommits(t *testing.T) {
	r := newRepo(t, repoOptions{cfg: smallConfig()})
	gcConcurrentCommits(t, r, r)
}

// TestGCSharedStoreConcurrentCommits is TestGCConcurrentCommits with gc
// and the writers on two Repos over one shared store (a chunkstore.Toucher)
// and one catalog: two machines on one pool. Neither sees the other's
// in-process holds, so what keeps the writers' chunks is the time-based
// protection alone (Touch, DeleteIfIdle, the gc margin).
func TestGCSharedStoreConcurrentCommits(t *testing.T) {
	shared := mem.NewShared(nil)
	writer := newRepo(t, repoOptions{cfg: smallConfig(), shared: shared})
	collector := newRepo(t, repoOptions{cfg: smallConfig(), shared: shared, cat: writer.Catalog()})
	// A margin short enough that gc deletes chunks of removed versions
	// while the writers run, and so races with the writers committing that
	// content again. A commit slower than the margin (a loaded disk under
	// -race) is fenced and touches its chunks again, so it is safe too.
	for _, r := range []*testRepo{writer, collector} {
		r.SetGCMargin(500 * time.Millisecond)
	}
	gcConcurrentCommits(t, collector, writer)
}

// gcConcurrentCommits runs gc on collector in a loop while writers commit
// through writer, removing versions and writing their content again, then
// checks that every version kept reads back and gc then deletes exactly what
// nothing references.
func gcConcurrentCommits(t *testing.T, collector, r *testRepo) {
	const writers = 4
	rounds, minRun := 25, time.Duration(0)
	if collector != r {
		// Run for several gc margins, so that gc deletes for real.
		minRun = 2 * time.Second
	}
	start := time.Now()
	ctx := context.Background()
	// Content is made of shared blocks, so writers share chunks.
	blocks := make([][]byte, 8)
	for i := range blocks {
		blocks[i] = randomBytes(uint64(80+i), 40*kiB+i*1000)
	}
	var (
		mu sync.Mutex
		m  = model{}
	)
	stop := make(chan struct{})
	gcDone := make(chan int)
	deleted := 0 // by the gc runs alongside the writers
	go func() {
		n := 0
		defer func() { gcDone <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, err := collector.GC(ctx, versions.GCProgress{})
			if err != nil {
				t.Errorf("GC: %v", err)
				return
			}
			n++
			deleted += st.Deleted
		}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			files := []versions.Ino{r.create(fmt.Sprintf("/w%d/a", w)).Ino, r.create(fmt.Sprintf("/w%d/b", w)).Ino}
			type committed struct {
				ino versions.Ino
				v   versions.Version
			}
			var mine []committed
			commit := func(ino versions.Ino, data []byte) bool {
				v, err := r.Write(ctx, ino, bytes.NewReader(data), time.Time{}, nil)
				if err != nil {
					t.Errorf("writer %d: Write: %v", w, err)
					return false
				}
				mu.Lock()
				m[v.ID] = data
				mu.Unlock()
				mine = append(mine, committed{ino, v})
				return true
			}
			var removed [][]byte // content of versions removed and not written again yet
			for i := 0; i < rounds || time.Since(start) < minRun; i++ {
				if len(removed) > 0 && rng.IntN(4) == 0 {
					// Write again content removed a while ago: its
					// chunks may be idle and going, right now.
					k := rng.IntN(len(removed))
					data := removed[k]
					removed = append(removed[:k], removed[k+1:]...)
					if !commit(files[rng.IntN(2)], data) {
						return
					}
					continue
				}
				if len(mine) > 2 && rng.IntN(3) == 0 {
					// Remove a version, then write its content again,
					// now or later: gc may delete its chunks in between.
					i := rng.IntN(len(mine))
					c := mine[i]
					mine = append(mine[:i], mine[i+1:]...)
					mu.Lock()
					data := m[c.v.ID]
					delete(m, c.v.ID)
					mu.Unlock()
					if err := r.Catalog().RemoveVersion(ctx, c.ino, c.v.ID); err != nil {
						t.Errorf("writer %d: RemoveVersion: %v", w, err)
						return
					}
					if rng.IntN(2) == 0 {
						removed = append(removed, data)
						continue
					}
					if !commit(files[rng.IntN(2)], data) {
						return
					}
					continue
				}
				var data []byte
				for range 2 + rng.IntN(4) {
					data = append(data, blocks[rng.IntN(len(blocks))]...)
				}
				if !commit(files[rng.IntN(2)], data) {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	gcs := <-gcDone
	t.Logf("%d versions committed and kept, %d gc runs alongside deleted %d chunks", len(m), gcs, deleted)
	if t.Failed() {
		return
	}
	if gcs == 0 || deleted == 0 {
		t.Fatalf("gc ran %d times and deleted %d chunks while the writers ran: the test raced nothing", gcs, deleted)
	}
	r.fsckClean()
	m.check(t, r)
	if collector != r {
		// Wait out the margin, so that the final gc can take everything
		// unreferenced, as checkGC expects.
		time.Sleep(600 * time.Millisecond)
	}
	checkGC(t, collector)
	r.fsckClean()
	m.check(t, r)
}

// TestGCRace makes gc run at the moments a commit is most exposed, each
// forced with a store or catalog that pauses there, and checks that the
// chunks the commit relies on survive.
func TestGCRace(t *testing.T) {
	cases := []struct {
		name string
		// pause arms a pause at the point under test; paused is closed when
		// the commit (or gc) gets there and resume lets it go on.
		pause func(h *hookStore, c *hookCatalog, target chunkstore.ID, paused, resume chan struct{})
		// gcPaused: the pause is in gc (between mark and sweep) and the
		// commit runs whole inside it; otherwise gc runs inside the commit.
		gcPaused bool
	}{
		{"commit found the chunk present", func(h *hookStore, _ *hookCatalog, target chunkstore.ID, paused, resume chan struct{}) {
			var once sync.Once
			h.set(hooks{afterHas: func(id chunkstore.ID, ok bool) {
				if id == target && ok {
					once.Do(func() { close(paused); <-resume })
				}
			}})
		}, false},
		{"commit has just put a chunk", func(h *hookStore, _ *hookCatalog, _ chunkstore.ID, paused, resume chan struct{}) {
			var once sync.Once
			h.set(hooks{afterPut: func(chunkstore.ID) { once.Do(func() { close(paused); <-resume }) }})
		}, false},
		{"recipe stored, version not yet", func(_ *hookStore, c *hookCatalog, _ chunkstore.ID, paused, resume chan struct{}) {
			var once sync.Once
			c.set(catHooks{beforeCommit: func() { once.Do(func() { close(paused); <-resume }) }})
		}, false},
		{"commit between gc's mark and sweep", func(_ *hookStore, c *hookCatalog, _ chunkstore.ID, paused, resume chan struct{}) {
			var once sync.Once
			c.set(catHooks{afterWalk: func() { once.Do(func() { close(paused); <-resume }) }})
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h, c := &hookStore{}, &hookCatalog{}
			r := newRepo(t, repoOptions{cfg: smallConfig(), wrap: h.wrap, wrapCat: c.wrap})
			// Content whose chunks are in the store but unreferenced: the
			// new version reuses them.
			reused := randomBytes(90, 100*kiB)
			a := r.create("/a")
			old := r.write(a.Ino, reused)
			if err := r.Catalog().RemoveVersion(ctx, a.Ino, old.ID); err != nil {
				t.Fatal(err)
			}
			target := r.recipe(old).Extents[0].ID
			data := concat(reused, randomBytes(91, 100*kiB)) // and new chunks
			b := r.create("/b")

			paused, resume := make(chan struct{}), make(chan struct{})
			tc.pause(h, c, target, paused, resume)
			var (
				v        versions.Version
				err      error
				gcStats  versions.GCStats
				gcErr    error
				finished = make(chan struct{})
			)
			if tc.gcPaused {
				go func() {
					defer close(finished)
					gcStats, gcErr = r.GC(ctx, versions.GCProgress{})
				}()
				<-paused
				c.set(catHooks{})
				v, err = r.Write(ctx, b.Ino, bytes.NewReader(data), time.Time{}, nil)
				close(resume)
				<-finished
			} else {
				go func() {
					defer close(finished)
					v, err = r.Write(ctx, b.Ino, bytes.NewReader(data), time.Time{}, nil)
				}()
				<-paused
				h.set(hooks{})
				c.set(catHooks{})
				gcStats, gcErr = r.GC(ctx, versions.GCProgress{})
				close(resume)
				<-finished
			}
			if err != nil || gcErr != nil {
				t.Fatalf("Write: %v; GC: %v", err, gcErr)
			}
			if gcStats.Kept == 0 {
				t.Errorf("gc kept nothing for the commit in progress: %+v", gcStats)
			}
			if !r.stored()[target] {
				t.Fatalf("gc deleted chunk %s, which the commit reused", target.Str())
			}
			r.fsckClean()
			r.mustRead(v, data)
			// Now that the commit is done, gc has nothing to delete.
			if st := checkGC(t, r); st.Deleted != 0 {
				t.Errorf("gc after the commit deleted %d chunks", st.Deleted)
			}
			r.mustRead(v, data)
		})
	}
}

// hooks are called by a hookStore around the calls of the store below it.
type hooks struct {
	// beforePut runs first; an error is returned instead of putting.
	beforePut func(ctx context.Context, id chunkstore.ID, data []byte) error
	afterPut  func(id chunkstore.ID)
	afterHas  func(id chunkstore.ID, ok bool)
}

// hookStore lets a test act at chosen points of the calls a Repo makes: fail
// them, or pause them on channels. Hooks can be swapped while calls run.
type hookStore struct {
	chunkstore.Store
	mu sync.Mutex
	h  hooks
}

func (s *hookStore) wrap(inner chunkstore.Store) chunkstore.Store {
	s.Store = inner
	return s
}

func (s *hookStore) set(h hooks) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

func (s *hookStore) get() hooks {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h
}

func (s *hookStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	h := s.get()
	if h.beforePut != nil {
		if err := h.beforePut(ctx, id, data); err != nil {
			return err
		}
	}
	err := s.Store.Put(ctx, id, data)
	if err == nil && h.afterPut != nil {
		h.afterPut(id)
	}
	return err
}

func (s *hookStore) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	ok, err := s.Store.Has(ctx, id)
	if h := s.get(); err == nil && h.afterHas != nil {
		h.afterHas(id, ok)
	}
	return ok, err
}

// catHooks are called by a hookCatalog.
type catHooks struct {
	beforeCommit func()
	afterWalk    func()
}

// hookCatalog is hookStore for the catalog.
type hookCatalog struct {
	versions.Catalog
	mu sync.Mutex
	h  catHooks
}

func (c *hookCatalog) wrap(inner versions.Catalog) versions.Catalog {
	c.Catalog = inner
	return c
}

func (c *hookCatalog) set(h catHooks) {
	c.mu.Lock()
	c.h = h
	c.mu.Unlock()
}

func (c *hookCatalog) get() catHooks {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h
}

func (c *hookCatalog) Commit(ctx context.Context, ino versions.Ino, v versions.Version) (versions.Version, error) {
	if h := c.get(); h.beforeCommit != nil {
		h.beforeCommit()
	}
	return c.Catalog.Commit(ctx, ino, v)
}

func (c *hookCatalog) Walk(ctx context.Context, fn func(versions.Ino, versions.Version) error) error {
	err := c.Catalog.Walk(ctx, fn)
	if h := c.get(); err == nil && h.afterWalk != nil {
		h.afterWalk()
	}
	return err
}

// isRecipe reports whether plain chunk data is an encoded recipe.
func isRecipe(data []byte) bool {
	_, err := recipe.Decode(data)
	return err == nil
}

// TestGCFence checks the catalog's side of shared-store gc: a commit whose
// chunks were touched before the latest gc start less the margin is refused,
// one touched after it goes through, and the fence never moves back.
func TestGCFence(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, repoOptions{})
	f := r.Catalog().(versions.GCFencer)
	ino := r.create("/f").Ino
	now := time.Now()
	if err := f.FenceGC(ctx, now); err != nil {
		t.Fatal(err)
	}
	if err := f.FenceGC(ctx, now.Add(-time.Hour)); err != nil { // ignored: older
		t.Fatal(err)
	}
	v := versions.Version{Recipe: chunkstore.HashBLAKE3.Sum([]byte("recipe")), Size: 1}
	if _, err := f.CommitFenced(ctx, ino, v, now.Add(-90*time.Minute), time.Hour); !errors.Is(err, versions.ErrFenced) {
		t.Fatalf("commit touched before fence-margin: %v, want ErrFenced", err)
	}
	if vs := r.versionsOf(ino); len(vs) != 0 {
		t.Fatalf("a fenced commit left %d versions", len(vs))
	}
	if _, err := f.CommitFenced(ctx, ino, v, now.Add(-30*time.Minute), time.Hour); err != nil {
		t.Fatalf("commit touched after fence-margin: %v", err)
	}
	if vs := r.versionsOf(ino); len(vs) != 1 {
		t.Fatalf("%d versions after one commit", len(vs))
	}
}

// TestGCSharedStoreRetouch shows shared-store commits that a gc overtook:
// their chunks were touched, then gc fenced and (the margin being short)
// deleted what the mark did not find. The commit, refused by the fence,
// touches its chunks again and finds some gone. WriteFrom, which can read
// its source again, stores it again and commits readable data; Write, whose
// source is a stream, fails and commits nothing. Neither commits a version
// that points at deleted chunks.
func TestGCSharedStoreRetouch(t *testing.T) {
	ctx := context.Background()
	shared := mem.NewShared(nil)
	var collector *testRepo
	var armed atomic.Bool
	writer := newRepo(t, repoOptions{cfg: smallConfig(), shared: shared, wrapCat: func(c versions.Catalog) versions.Catalog {
		return fencedHook{c.(*versions.KVCatalog), func() {
			// Between the writer's last touch and its version entry:
			// wait out the margin and collect.
			if armed.Swap(false) {
				time.Sleep(30 * time.Millisecond)
				st, err := collector.GC(ctx, versions.GCProgress{})
				if err != nil || st.Deleted == 0 {
					t.Errorf("gc inside the commit: %+v, %v; want chunks deleted", st, err)
				}
			}
		}}
	}})
	collector = newRepo(t, repoOptions{cfg: smallConfig(), shared: shared, cat: writer.Catalog()})
	for _, r := range []*testRepo{writer, collector} {
		r.SetGCMargin(10 * time.Millisecond)
	}
	ino := writer.create("/f").Ino

	data := randomBytes(5, 300*kiB)
	armed.Store(true)
	v, rec, err := writer.WriteFrom(ctx, ino, bytes.NewReader(data), int64(len(data)), nil, 0, time.Time{})
	if err != nil {
		t.Fatalf("WriteFrom overtaken by gc: %v", err)
	}
	if len(rec.Extents) == 0 {
		t.Fatal("no extents")
	}
	writer.mustRead(v, data)

	other := randomBytes(6, 300*kiB)
	armed.Store(true)
	if _, err := writer.Write(ctx, ino, bytes.NewReader(other), time.Time{}, nil); err == nil || !strings.Contains(err.Error(), "no longer stored") {
		t.Fatalf("Write overtaken by gc: %v, want a chunk no longer stored", err)
	}
	if vs := writer.versionsOf(ino); len(vs) != 1 || vs[0].ID != v.ID {
		t.Fatalf("versions after the failed Write: %v, want only %v", vs, v.ID)
	}
	writer.mustRead(v, data)
	writer.fsckClean()
}

// fencedHook is a catalog whose CommitFenced calls before first.
type fencedHook struct {
	*versions.KVCatalog
	before func()
}

func (h fencedHook) CommitFenced(ctx context.Context, ino versions.Ino, v versions.Version, touched time.Time, margin time.Duration) (versions.Version, error) {
	h.before()
	return h.KVCatalog.CommitFenced(ctx, ino, v, touched, margin)
}

// touchCounter is a shared store that records which chunks are touched.
type touchCounter struct {
	chunkstore.Store
	chunkstore.Toucher
	mu      sync.Mutex
	touched map[chunkstore.ID]int
}

func (c *touchCounter) Touch(ctx context.Context, id chunkstore.ID) (bool, error) {
	c.mu.Lock()
	c.touched[id]++
	c.mu.Unlock()
	return c.Toucher.Touch(ctx, id)
}

// reset forgets the touches so far.
func (c *touchCounter) reset() {
	c.mu.Lock()
	c.touched = map[chunkstore.ID]int{}
	c.mu.Unlock()
}

func (c *touchCounter) count(id chunkstore.ID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.touched[id]
}

// TestStoreAheadTouchesOnce shows that on a shared store a commit does not
// touch again the chunks that storing ahead put moments before (over RADOS
// that was one round trip per chunk of the file at every close), and that
// it does touch them once a quarter of the gc margin has passed, as far as
// its commit vouches for.
func TestStoreAheadTouchesOnce(t *testing.T) {
	ctx := context.Background()
	tc := &touchCounter{touched: map[chunkstore.ID]int{}}
	r := newRepo(t, repoOptions{cfg: smallConfig(), shared: mem.NewShared(nil), wrap: func(s chunkstore.Store) chunkstore.Store {
		tc.Store, tc.Toucher = s, s.(chunkstore.Toucher)
		return tc
	}})
	ino := r.create("/f").Ino
	data := randomBytes(8, 512*kiB)
	exts, end, held, err := r.StoreAhead(ctx, bytes.NewReader(data), 0)
	defer r.Release(held)
	if err != nil {
		t.Fatal(err)
	}
	if len(exts) < 8 {
		t.Fatalf("stored ahead %d chunks, want many", len(exts))
	}
	commit := func() {
		t.Helper()
		v, _, err := r.WriteFrom(ctx, ino, bytes.NewReader(data), int64(len(data)), exts, end, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		r.mustRead(v, data)
	}

	tc.reset()
	commit()
	for _, e := range exts {
		if n := tc.count(e.ID); n != 0 {
			t.Errorf("chunk %s stored ahead just now was touched %d times by the commit", e.ID, n)
		}
	}

	r.SetGCMargin(40 * time.Millisecond)
	time.Sleep(20 * time.Millisecond) // more than a quarter margin
	tc.reset()
	commit()
	for _, e := range exts {
		if n := tc.count(e.ID); n == 0 {
			t.Errorf("chunk %s stored ahead a quarter margin ago was not touched by the commit", e.ID)
		}
	}
}
