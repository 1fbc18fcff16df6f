package versions_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// Crash ordering: a Write that fails at any step (the Has or Put of any
// chunk, the recipe's Put, the store's Sync, the catalog's Commit, reading
// the source) must commit nothing, leave every earlier version intact and
// fsck clean, and leave only orphans that gc reclaims. And the version entry
// of a commit must never be written before a Sync that covers every chunk
// it references (TestCommitAfterSync), so a crash cannot leave a durable
// version whose chunks are lost (TestCommitKilled, on a real store).

var errInjected = errors.New("injected fault")

// fault makes calls of one method fail, in the manner of kopia's
// blobtesting.FaultyStorage: the nth call after the fault is armed, or, with
// repeat, that one and every later one.
type fault struct {
	method string // "Put", "Has" or "Sync"
	nth    int    // 1-based
	repeat bool
	// before runs instead of failing with errInjected when set, and the
	// call goes on (e.g. to cancel the write's context).
	before func()

	calls int
	fired int
}

// faultyStore injects faults into the calls that reach the store below.
type faultyStore struct {
	chunkstore.Store
	mu     sync.Mutex
	faults []*fault
	failID chunkstore.ID // a Put of this chunk fails, if set
}

func (s *faultyStore) wrap(inner chunkstore.Store) chunkstore.Store {
	s.Store = inner
	return s
}

// add arms f, replacing any fault armed before.
func (s *faultyStore) add(f *fault) {
	s.mu.Lock()
	s.faults = []*fault{f}
	s.mu.Unlock()
}

func (s *faultyStore) clear() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// check counts a call of method and returns the injected error, if any.
func (s *faultyStore) check(method string) error {
	s.mu.Lock()
	var before func()
	var err error
	for _, f := range s.faults {
		if f.method != method {
			continue
		}
		f.calls++
		if f.calls == f.nth || f.repeat && f.calls > f.nth {
			f.fired++
			if f.before != nil {
				before = f.before
			} else {
				err = fmt.Errorf("%w: %s call %d", errInjected, method, f.calls)
			}
		}
	}
	s.mu.Unlock()
	if before != nil {
		before()
	}
	return err
}

func (s *faultyStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	s.mu.Lock()
	failID := s.failID
	s.mu.Unlock()
	if id == failID {
		return fmt.Errorf("%w: Put of %s", errInjected, id.Str())
	}
	if err := s.check("Put"); err != nil {
		return err
	}
	return s.Store.Put(ctx, id, data)
}

func (s *faultyStore) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	if err := s.check("Has"); err != nil {
		return false, err
	}
	return s.Store.Has(ctx, id)
}

func (s *faultyStore) Sync(ctx context.Context) error {
	if err := s.check("Sync"); err != nil {
		return err
	}
	return s.Store.Sync(ctx)
}

// crashFixture is a repo with history, and content to write whose chunks
// are partly in the store already.
type crashFixture struct {
	r       *testRepo
	fs      *faultyStore
	m       model
	ino     versions.Ino // the file the write under test goes to
	history []versions.Version
	next    []byte // the content of the write under test
	baseSet map[chunkstore.ID]bool
}

func newCrashFixture(t *testing.T, wrapCat func(versions.Catalog) versions.Catalog) *crashFixture {
	fs := &faultyStore{}
	r := newRepo(t, repoOptions{cfg: smallConfig(), wrap: fs.wrap, wrapCat: wrapCat})
	f := &crashFixture{r: r, fs: fs, m: model{}}
	a := r.create("/docs/a")
	f.ino = a.Ino
	v1 := randomBytes(100, 150*kiB)
	for _, data := range [][]byte{v1, randomBytes(101, 120*kiB)} {
		v := r.write(a.Ino, data)
		f.m[v.ID] = data
		f.history = append(f.history, v)
	}
	data := randomBytes(102, 90*kiB)
	v := r.write(r.create("/b").Ino, data)
	f.m[v.ID] = data
	// New content that reuses v1's chunks, with holes.
	f.next = concat(v1[:100*kiB], randomBytes(103, 200*kiB), make([]byte, 200*kiB), randomBytes(104, 10*kiB))
	f.baseSet = r.stored()
	return f
}

// checkNothingCommitted checks the state a failed write must leave: the
// history as it was, every version reading back, fsck clean, and gc taking
// the store back to what it held before. It returns the orphans gc deleted.
func (f *crashFixture) checkNothingCommitted(t *testing.T) int {
	t.Helper()
	r := f.r
	vs := r.versionsOf(f.ino)
	if len(vs) != len(f.history) {
		t.Fatalf("the failed write left %d versions, want %d", len(vs), len(f.history))
	}
	for i := range vs {
		if vs[i] != f.history[i] {
			t.Fatalf("version %d is %+v, was %+v", i, vs[i], f.history[i])
		}
	}
	a, err := r.Catalog().GetAttr(context.Background(), f.ino)
	if err != nil {
		t.Fatal(err)
	}
	if head := f.history[len(f.history)-1]; a.Head != head.ID || a.Size != head.Size || a.Recipe != head.Recipe {
		t.Fatalf("HEAD moved: attr %+v", a)
	}
	r.fsckClean()
	f.m.check(t, r)
	st := checkGC(t, r)
	if got := r.stored(); len(got) != len(f.baseSet) {
		t.Fatalf("after gc the store has %d chunks, had %d before the write", len(got), len(f.baseSet))
	}
	f.m.check(t, r)
	return st.Deleted
}

// TestWriteFailsAtEveryStep fails a Write at each Put and each Has it makes,
// one at a time, and with every Put from some point on failing, and with the
// write's context cancelled at each Put.
func TestWriteFailsAtEveryStep(t *testing.T) {
	// Count the calls a clean write makes, on a copy of the fixture.
	probe := newCrashFixture(t, nil)
	counter := &fault{method: "Put", nth: -1}
	hasCounter := &fault{method: "Has", nth: -1}
	probe.fs.mu.Lock()
	probe.fs.faults = []*fault{counter, hasCounter}
	probe.fs.mu.Unlock()
	v := probe.r.write(probe.ino, probe.next)
	rec := probe.r.recipe(v)
	puts, has := counter.calls, hasCounter.calls
	newChunks := len(probe.r.stored()) - len(probe.baseSet)
	if puts != newChunks || puts < 5 || has <= puts || len(rec.Extents) >= has {
		t.Fatalf("clean write: %d puts, %d has, %d new chunks, %d extents; the test wants new and reused chunks",
			puts, has, newChunks, len(rec.Extents))
	}
	t.Logf("a clean write makes %d Has and %d Put calls (the last Put is the recipe's)", has, puts)

	modes := []struct {
		name  string
		steps int
		fault func(n int, cancel context.CancelFunc) *fault
		want  error
	}{
		{"nth put fails", puts, func(n int, _ context.CancelFunc) *fault {
			return &fault{method: "Put", nth: n}
		}, errInjected},
		{"puts fail from the nth on", puts, func(n int, _ context.CancelFunc) *fault {
			return &fault{method: "Put", nth: n, repeat: true}
		}, errInjected},
		{"nth has fails", has, func(n int, _ context.CancelFunc) *fault {
			return &fault{method: "Has", nth: n}
		}, errInjected},
		{"cancelled at the nth put", puts, func(n int, cancel context.CancelFunc) *fault {
			return &fault{method: "Put", nth: n, before: cancel}
		}, context.Canceled},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			f := newCrashFixture(t, nil)
			lastOrphans := 0
			for n := 1; n <= mode.steps; n++ {
				ctx, cancel := context.WithCancel(context.Background())
				flt := mode.fault(n, cancel)
				f.fs.add(flt)
				_, err := f.r.Write(ctx, f.ino, bytes.NewReader(f.next), time.Time{}, nil)
				f.fs.clear()
				cancel()
				if !errors.Is(err, mode.want) {
					t.Fatalf("step %d: Write: %v, want %v", n, err, mode.want)
				}
				if flt.fired == 0 {
					t.Fatalf("step %d: the fault never fired (%d calls)", n, flt.calls)
				}
				lastOrphans = f.checkNothingCommitted(t)
			}
			// The recipe is stored alongside the last data chunks, not
			// after them, so which call is the recipe's varies; the
			// recipe-specific case is TestWriteFailsAtRecipe. Whatever
			// failed, at most every new data chunk is left orphaned.
			if lastOrphans > puts-1 {
				t.Errorf("a failed write left %d orphans, more than its %d data chunks", lastOrphans, puts-1)
			}
			// With the faults gone the same write works.
			v := f.r.write(f.ino, f.next)
			f.r.mustRead(v, f.next)
			f.r.fsckClean()
		})
	}
}

// failingCatalog fails Commit while fail is set.
type failingCatalog struct {
	versions.Catalog
	fail atomic.Bool
}

func (c *failingCatalog) Commit(ctx context.Context, ino versions.Ino, v versions.Version) (versions.Version, error) {
	if c.fail.Load() {
		return versions.Version{}, fmt.Errorf("commit %d: %w", ino, errInjected)
	}
	return c.Catalog.Commit(ctx, ino, v)
}

// TestWriteCommitFails: the catalog refuses the version after every chunk
// and the recipe are stored.
func TestWriteCommitFails(t *testing.T) {
	cat := &failingCatalog{}
	f := newCrashFixture(t, func(c versions.Catalog) versions.Catalog { cat.Catalog = c; return cat })
	cat.fail.Store(true)
	_, err := f.r.Write(context.Background(), f.ino, bytes.NewReader(f.next), time.Time{}, nil)
	if !errors.Is(err, errInjected) {
		t.Fatalf("Write: %v, want the catalog's error", err)
	}
	cat.fail.Store(false)
	// Every new data chunk and the recipe were stored, and are orphans.
	newChunks := 0
	for _, e := range f.r.recipe(versions.Version{Recipe: lastRecipe(t, f)}).Extents {
		if !f.baseSet[e.ID] {
			newChunks++
		}
	}
	if orphans := f.checkNothingCommitted(t); orphans != newChunks+1 {
		t.Errorf("gc found %d orphans after a failed commit; want the %d new chunks and the recipe", orphans, newChunks)
	}
}

// lastRecipe finds the recipe among the chunks stored since the fixture was
// made.
func lastRecipe(t *testing.T, f *crashFixture) chunkstore.ID {
	t.Helper()
	for id := range f.r.stored() {
		if f.baseSet[id] {
			continue
		}
		b, err := f.r.Fetch(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if isRecipe(b) {
			return id
		}
	}
	t.Fatal("no recipe was stored")
	return chunkstore.ID{}
}

// errReader returns data and then err.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

// TestWriteSourceFails: the content cannot be read to the end.
func TestWriteSourceFails(t *testing.T) {
	f := newCrashFixture(t, nil)
	_, err := f.r.Write(context.Background(), f.ino, &errReader{bytes.NewReader(f.next), errInjected}, time.Time{}, nil)
	if !errors.Is(err, errInjected) {
		t.Fatalf("Write: %v, want the reader's error", err)
	}
	f.checkNothingCommitted(t)
}

// TestWriteFailsAtRecipe fails the Put of the recipe itself, whenever it
// comes: nothing is committed, and gc takes the store back to what it was.
func TestWriteFailsAtRecipe(t *testing.T) {
	probe := newCrashFixture(t, nil)
	v := probe.r.write(probe.ino, probe.next)
	f := newCrashFixture(t, nil)
	f.fs.mu.Lock()
	f.fs.failID = v.Recipe
	f.fs.mu.Unlock()
	if _, err := f.r.Write(context.Background(), f.ino, bytes.NewReader(f.next), time.Time{}, nil); !errors.Is(err, errInjected) {
		t.Fatalf("Write with the recipe's put failing: %v", err)
	}
	f.fs.mu.Lock()
	f.fs.failID = chunkstore.ID{}
	f.fs.mu.Unlock()
	f.checkNothingCommitted(t)
	f.r.mustRead(f.r.write(f.ino, f.next), f.next)
}

// TestWriteSyncFails: every chunk and the recipe are stored, but the store
// cannot make them durable. Each way of committing new content must then
// commit nothing.
func TestWriteSyncFails(t *testing.T) {
	ctx := context.Background()
	commits := map[string]func(f *crashFixture) error{
		"Write": func(f *crashFixture) error {
			_, err := f.r.Write(ctx, f.ino, bytes.NewReader(f.next), time.Time{}, nil)
			return err
		},
		"WriteFrom": func(f *crashFixture) error {
			_, _, err := f.r.WriteFrom(ctx, f.ino, bytes.NewReader(f.next), int64(len(f.next)), nil, 0, time.Time{})
			return err
		},
		"CommitRecipe": func(f *crashFixture) error {
			// The recipe of existing content: only the recipe is new.
			rec := f.r.recipe(f.history[0])
			rec.Size += 10
			_, err := f.r.CommitRecipe(ctx, f.ino, rec, time.Time{})
			return err
		},
	}
	for name, commit := range commits {
		t.Run(name, func(t *testing.T) {
			f := newCrashFixture(t, nil)
			flt := &fault{method: "Sync", nth: 1}
			f.fs.add(flt)
			err := commit(f)
			f.fs.clear()
			if !errors.Is(err, errInjected) {
				t.Fatalf("%s with Sync failing: %v, want the store's error", name, err)
			}
			if flt.fired != 1 {
				t.Fatalf("Sync was called %d times", flt.calls)
			}
			f.checkNothingCommitted(t)
		})
	}
}

// syncWatch records, for a store and the catalog above it, when each chunk
// was acknowledged (a Put returned nil or a Has said yes) and when each
// successful Sync began, and checks at every Commit that the version's
// recipe and all its chunks were acknowledged before a Sync that has
// returned: the contract of chunkstore.Store.Sync is what makes them
// durable, so this is the order that keeps a crash from losing a committed
// version.
type syncWatch struct {
	chunkstore.Store
	t       *testing.T
	mu      sync.Mutex
	clock   int
	acked   map[chunkstore.ID]int // first acknowledgement
	synced  int                   // when the latest Sync that succeeded began
	commits int
}

func (w *syncWatch) tick() int { w.clock++; return w.clock }

func (w *syncWatch) ack(id chunkstore.ID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.acked[id]; !ok {
		w.acked[id] = w.tick()
	}
}

func (w *syncWatch) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	err := w.Store.Put(ctx, id, data)
	if err == nil {
		w.ack(id)
	}
	return err
}

func (w *syncWatch) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	ok, err := w.Store.Has(ctx, id)
	if ok && err == nil {
		w.ack(id)
	}
	return ok, err
}

func (w *syncWatch) Sync(ctx context.Context) error {
	w.mu.Lock()
	start := w.tick()
	w.mu.Unlock()
	err := w.Store.Sync(ctx)
	if err == nil {
		w.mu.Lock()
		w.synced = max(w.synced, start)
		w.mu.Unlock()
	}
	return err
}

// watchedCatalog checks the order at each Commit.
type watchedCatalog struct {
	versions.Catalog
	w *syncWatch
}

func (c *watchedCatalog) Commit(ctx context.Context, ino versions.Ino, v versions.Version) (versions.Version, error) {
	w := c.w
	rec, err := recipe.Load(ctx, v.Recipe, w.Store.Get)
	if err != nil {
		w.t.Errorf("Commit of a version whose recipe does not load: %v", err)
		return c.Catalog.Commit(ctx, ino, v)
	}
	w.mu.Lock()
	ids := []chunkstore.ID{v.Recipe}
	for _, e := range rec.Extents {
		ids = append(ids, e.ID)
	}
	for _, id := range ids {
		if at, ok := w.acked[id]; !ok || at > w.synced {
			w.t.Errorf("Commit of inode %d references chunk %s, which no Sync since it was stored covers", ino, id.Str())
		}
	}
	w.commits++
	w.mu.Unlock()
	return c.Catalog.Commit(ctx, ino, v)
}

// TestCommitAfterSync commits new content in every way the engine can,
// several writers at once with chunks in common (so that one commit
// deduplicates against chunks another has only just put), and checks the
// order of each commit against the store's Syncs.
func TestCommitAfterSync(t *testing.T) {
	w := &syncWatch{t: t, acked: map[chunkstore.ID]int{}}
	r := newRepo(t, repoOptions{
		cfg:     smallConfig(),
		wrap:    func(s chunkstore.Store) chunkstore.Store { w.Store = s; return w },
		wrapCat: func(c versions.Catalog) versions.Catalog { return &watchedCatalog{Catalog: c, w: w} },
	})
	ctx := context.Background()
	common := randomBytes(300, 200*kiB)
	var wg sync.WaitGroup
	for i := range 4 {
		a := r.create(fmt.Sprintf("/w/%d", i))
		wg.Go(func() {
			for round := range 3 {
				data := concat(common, randomBytes(uint64(310+10*i+round), 100*kiB))
				if _, err := r.Write(ctx, a.Ino, bytes.NewReader(data), time.Time{}, nil); err != nil {
					t.Errorf("Write: %v", err)
					return
				}
			}
			// An append, committed incrementally.
			data := concat(common, randomBytes(uint64(400+i), 150*kiB))
			_, rec, err := r.WriteFrom(ctx, a.Ino, bytes.NewReader(data), int64(len(data)), nil, 0, time.Time{})
			if err != nil {
				t.Errorf("WriteFrom: %v", err)
				return
			}
			prefix, base := versions.Reusable(rec)
			data = concat(data, randomBytes(uint64(500+i), 50*kiB))
			if _, _, err := r.WriteFrom(ctx, a.Ino, bytes.NewReader(data), int64(len(data)), prefix, base, time.Time{}); err != nil {
				t.Errorf("WriteFrom: %v", err)
				return
			}
			rec.Size++
			if _, err := r.CommitRecipe(ctx, a.Ino, rec, time.Time{}); err != nil {
				t.Errorf("CommitRecipe: %v", err)
			}
		})
	}
	wg.Wait()
	if w.commits != 4*6 {
		t.Errorf("saw %d commits, want %d", w.commits, 4*6)
	}
}

// commitChildEnv makes the test binary, run as a child by TestCommitKilled,
// commit versions into the local store it names until it is killed.
const commitChildEnv = "CASFS_TEST_COMMIT_CHILD"

// commitContent is the content of the nth version TestCommitKilled's child
// commits: sizes vary so that versions share some chunks and not others.
func commitContent(n int) []byte {
	return concat(randomBytes(700, 64*kiB), randomBytes(uint64(1000+n), (n%7+1)*40*kiB))
}

// commitChild commits versions 0, 1, ... of /f into the store in dir and
// prints "committed N VERSION" after each commit returns.
func commitChild(dir string) {
	ctx := context.Background()
	r, err := versions.Open(ctx, dir, versions.OpenOptions{Owner: "commit child"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	a, err := r.Catalog().Lookup(ctx, versions.RootIno, "f")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for n := 0; ; n++ {
		v, err := r.Write(ctx, a.Ino, bytes.NewReader(commitContent(n)), time.Time{}, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("committed %d %s\n", n, v.ID)
	}
}

// TestCommitKilled kills a process in the middle of committing versions to
// a real local store, at a different moment each round, and checks what the
// next open finds: every version the child saw committed reads back, with
// all its chunks, and fsck is clean. Chunks stay temp files until a Sync,
// and the next open sweeps temp files, so a commit that did not Sync before
// writing its version entry fails this test.
func TestCommitKilled(t *testing.T) {
	if dir := os.Getenv(commitChildEnv); dir != "" {
		commitChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	if err := versions.Init(ctx, dir, smallConfig()); err != nil {
		t.Fatal(err)
	}
	r, err := versions.Open(ctx, dir, versions.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Catalog().Create(ctx, versions.RootIno, "f", versions.Attr{Mode: versions.ModeRegular | 0o644}); err != nil {
		t.Fatal(err)
	}
	r.Close()

	seen := map[string]int{} // version → its content number
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCommitKilled$")
		cmd.Env = append(os.Environ(), commitChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		for commits := 0; lines.Scan(); {
			var n int
			var id string
			if _, err := fmt.Sscanf(lines.Text(), "committed %d %s", &n, &id); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child said %q", lines.Text())
			}
			seen[id] = n
			if commits++; commits >= 3+2*round {
				time.Sleep(time.Duration(round) * time.Millisecond)
				break
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		r, err := versions.Open(ctx, dir, versions.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.Catalog().Lookup(ctx, versions.RootIno, "f")
		if err != nil {
			t.Fatal(err)
		}
		vs, err := r.Catalog().Versions(ctx, a.Ino)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, v := range vs {
			n, ok := seen[v.ID.String()]
			if !ok {
				continue // committed as the child was killed, unreported
			}
			found++
			rec, err := r.LoadRecipe(ctx, v.Recipe)
			if err != nil {
				t.Fatalf("round %d: version %s: %v", round, v.ID, err)
			}
			var buf bytes.Buffer
			if err := r.CopyOut(ctx, rec, &buf, nil); err != nil || !bytes.Equal(buf.Bytes(), commitContent(n)) {
				t.Fatalf("round %d: version %s (content %d) does not read back: %v", round, v.ID, n, err)
			}
		}
		if found != len(seen) {
			t.Errorf("round %d: %d versions were reported committed, %d are in the catalog", round, len(seen), found)
		}
		var problems []versions.Problem
		if _, err := r.Fsck(ctx, func(p versions.Problem) { problems = append(problems, p) }, nil); err != nil || len(problems) > 0 {
			t.Errorf("round %d: fsck: %v, problems %v", round, err, problems)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
