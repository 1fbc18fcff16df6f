package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
)

func packConfig() chunkstore.Config {
	cfg := chunkstore.DefaultConfig()
	cfg.Layout = chunkstore.LayoutPacks
	return cfg
}

// newPackStore inits a store of the packs layout in a temp dir.
func newPackStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	if err := Init(dir, packConfig()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustOpenPacks(t *testing.T, dir string, opts Options) *PackStore {
	t.Helper()
	s, err := OpenDir(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ps, ok := s.(*PackStore)
	if !ok {
		t.Fatalf("OpenDir gave a %T, want *PackStore", s)
	}
	t.Cleanup(func() { ps.Close() })
	return ps
}

// smallPacks makes packs roll over every few chunks, so tests cross packs.
func smallPacks(t *testing.T) {
	old := packLimit
	packLimit = 256 << 10
	t.Cleanup(func() { packLimit = old })
}

func reopenPacks(t *testing.T, s chunkstore.Store) chunkstore.Store {
	t.Helper()
	dir := strings.TrimPrefix(s.Properties().Name, "local:")
	_, raw := s.(*PackStore)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenDir(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if raw {
		return ds
	}
	es, err := chunkstore.NewEncoded(ds, ds.Config().Hash, ds.Config().Compression)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestPackConformance(t *testing.T) {
	smallPacks(t)
	chunkstoretest.RunReopen(t, func(t *testing.T) chunkstore.Store {
		return mustOpenPacksUnowned(t, newPackStore(t))
	}, reopenPacks)
}

func mustOpenPacksUnowned(t *testing.T, dir string) chunkstore.Store {
	t.Helper()
	s, err := OpenDir(context.Background(), dir, Options{Owner: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPackConformanceEncoded(t *testing.T) {
	smallPacks(t)
	for _, comp := range []string{chunkstore.CompressionZstd, chunkstore.CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			chunkstoretest.RunReopen(t, func(t *testing.T) chunkstore.Store {
				cfg := packConfig()
				cfg.Compression = comp
				dir := filepath.Join(t.TempDir(), "store")
				if err := Init(dir, cfg); err != nil {
					t.Fatal(err)
				}
				ds := mustOpenPacksUnowned(t, dir).(DirStore)
				es, err := chunkstore.NewEncoded(ds, cfg.Hash, cfg.Compression)
				if err != nil {
					t.Fatal(err)
				}
				return es
			}, reopenPacks)
		})
	}
}

func TestPackInitFormat(t *testing.T) {
	dir := newPackStore(t)
	b, err := os.ReadFile(filepath.Join(dir, configName))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := chunkstore.UnmarshalConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Format != 2 || cfg.Layout != chunkstore.LayoutPacks {
		t.Errorf("config has format %d, layout %q; want 2, packs", cfg.Format, cfg.Layout)
	}
	if _, err := Open(context.Background(), dir, Options{}); err == nil || !strings.Contains(err.Error(), "packs layout") {
		t.Errorf("Open (files layout only) of a packs store: %v", err)
	}
	// The files layout stays format 1, which older casfs reads.
	fdir := newStore(t)
	b, _ = os.ReadFile(filepath.Join(fdir, configName))
	if cfg, err := chunkstore.UnmarshalConfig(b); err != nil || cfg.Format != 1 {
		t.Errorf("files store config: format %d, %v; want 1", cfg.Format, err)
	}
}

// TestPackDeleteFreesSpace: gc's deletes give the disk space back once a
// Sync has taken them out of the index, and a pack with nothing left in it
// is removed at the next Open.
func TestPackDeleteFreesSpace(t *testing.T) {
	smallPacks(t)
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	ctx := context.Background()
	var ids []chunkstore.ID
	for i := range 20 {
		ids = append(ids, put(t, s, uint64(1000+i)))
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := packBlocks(t, dir)
	packsBefore := countPacks(t, dir)
	if packsBefore < 3 {
		t.Fatalf("20 chunks made %d packs; want several with a 256 KiB limit", packsBefore)
	}
	// Delete all but the last: the first packs become empty.
	for _, id := range ids[:19] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Has(ctx, id); ok {
			t.Fatalf("Has after Delete")
		}
	}
	if got := packBlocks(t, dir); got != before {
		t.Errorf("blocks changed before the Sync: %d → %d; a crash now would leave index entries over holes", before, got)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after := packBlocks(t, dir)
	_, keep := testChunk(1019)
	if after > before/4+alignUp(int64(len(keep))+recHeader)/512+64 {
		t.Errorf("after deleting 19 of 20 chunks, packs use %d of %d 512-byte blocks", after, before)
	}
	s.Close()
	s = mustOpenPacks(t, dir, Options{})
	if n := countPacks(t, dir); n >= packsBefore {
		t.Errorf("reopen left %d of %d packs; the empty ones should go", n, packsBefore)
	}
	got, err := s.Get(ctx, ids[19])
	if _, want := testChunk(1019); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the chunk not deleted: %v", err)
	}
	for _, id := range ids[:19] {
		if _, err := s.Get(ctx, id); !errors.Is(err, chunkstore.ErrNotFound) {
			t.Errorf("deleted chunk after reopen: %v; want ErrNotFound", err)
		}
	}
}

func packBlocks(t *testing.T, dir string) int64 {
	t.Helper()
	var blocks int64
	entries, err := os.ReadDir(filepath.Join(dir, packsName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, packsName, e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		blocks += st.Blocks
	}
	return blocks
}

func countPacks(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, packsName))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestPackDeleteThenPut: a chunk deleted and put again before a Sync, and
// put then deleted, end up as the last call said, across a reopen.
func TestPackDeleteThenPut(t *testing.T) {
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	ctx := context.Background()
	a := put(t, s, 1)
	b := put(t, s, 2)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	put(t, s, 1) // a again
	if err := s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	c := put(t, s, 3)
	if err := s.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, c); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("second Delete: %v; want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpenPacks(t, dir, Options{})
	for seed, want := range map[uint64]bool{1: true, 2: false, 3: false} {
		id, data := testChunk(seed)
		got, err := s.Get(ctx, id)
		switch {
		case want && (err != nil || !bytes.Equal(got, data)):
			t.Errorf("chunk %d: %v; want it whole", seed, err)
		case !want && !errors.Is(err, chunkstore.ErrNotFound):
			t.Errorf("chunk %d: %v; want ErrNotFound", seed, err)
		}
	}
}

// TestPackCorruptOnDisk: a damaged record is a CorruptError naming the
// pack and offset, never other bytes, and other chunks still read.
func TestPackCorruptOnDisk(t *testing.T) {
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	ctx := context.Background()
	a := put(t, s, 11)
	b := put(t, s, 12)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	path, off, _, err := s.Locate(a)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The header's ID, then the data: both must be caught, the second by
	// the Encoded layer's fingerprint.
	if _, err := f.WriteAt([]byte{0xff}, off-5); err != nil { // the ID's last byte
		t.Fatal(err)
	}
	f.Close()
	_, err = s.Get(ctx, a)
	var ce *chunkstore.CorruptError
	if !errors.As(err, &ce) || ce.ID != a || !strings.Contains(ce.Where, path) {
		t.Fatalf("Get of a chunk with a damaged header: %v; want a CorruptError naming %s", err, path)
	}
	if _, want := testChunk(12); !bytes.Equal(mustGet(t, s, b), want) {
		t.Errorf("the other chunk changed")
	}
	// A pack cut short.
	pathB, offB, nB, _ := s.Locate(b)
	if err := os.Truncate(pathB, offB+int64(nB)/2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, b); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Errorf("Get of a chunk cut short: %v; want ErrCorrupt", err)
	}
}

func mustGet(t *testing.T, s chunkstore.Store, id chunkstore.ID) []byte {
	t.Helper()
	b, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackPutDiskFull: a Put that fails half-way leaves no chunk behind and
// frees what it wrote; the store goes on working.
func TestPackPutDiskFull(t *testing.T) {
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	ctx := context.Background()
	orig := writeRecord
	t.Cleanup(func() { writeRecord = orig })
	writeRecord = func(f *os.File, hdr, data []byte, off int64) error {
		if _, err := f.WriteAt(append(hdr, data[:len(data)/2]...), off); err != nil {
			return err
		}
		return &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	id, data := testChunk(40)
	err := s.Put(ctx, id, data)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "store "+dir) {
		t.Fatalf("Put on a full disk: %v; want ENOSPC naming the store", err)
	}
	if ok, _ := s.Has(ctx, id); ok {
		t.Errorf("Has reports the chunk whose Put failed")
	}
	if b := packBlocks(t, dir); b != 0 {
		t.Errorf("the failed Put left %d blocks in use", b)
	}
	writeRecord = orig
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustGet(t, s, id), data) {
		t.Errorf("chunk put after the disk had room again differs")
	}
}

// TestPackSyncFailureSticks: after a failed fdatasync nothing is indexed,
// and every later Sync fails until the store is reopened.
func TestPackSyncFailureSticks(t *testing.T) {
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	ctx := context.Background()
	orig := syncPack
	t.Cleanup(func() { syncPack = orig })
	syncPack = func(*os.File) error { return syscall.EIO }
	id := put(t, s, 50)
	if err := s.Sync(ctx); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v; want EIO", err)
	}
	syncPack = orig
	if err := s.Sync(ctx); !errors.Is(err, syscall.EIO) {
		t.Fatalf("second Sync: %v; want the first failure again", err)
	}
	if n := indexLen(t, s); n != 0 {
		t.Errorf("%d chunks indexed after the failed Sync (id %s)", n, id.Str())
	}
}

func indexLen(t *testing.T, s *PackStore) int {
	t.Helper()
	n := 0
	s.mu.Lock()
	p := len(s.pending)
	s.mu.Unlock()
	if err := s.List(context.Background(), func(chunkstore.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n - p
}

// TestPackReadOnly: a read-only open reads what is there and writes
// nothing, not even an index for a store that has none yet.
func TestPackReadOnly(t *testing.T) {
	dir := newPackStore(t)
	ro := mustOpenPacks(t, dir, Options{ReadOnly: true})
	if ok, err := ro.Has(context.Background(), chunkstore.ID{1}); ok || err != nil {
		t.Errorf("Has on an empty read-only store: %v, %v", ok, err)
	}
	ro.Close()
	if _, err := os.Stat(filepath.Join(dir, indexName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a read-only open created the index: %v", err)
	}
	s := mustOpenPacks(t, dir, Options{})
	id := put(t, s, 60)
	s.Close()
	ro = mustOpenPacks(t, dir, Options{ReadOnly: true})
	if _, want := testChunk(60); !bytes.Equal(mustGet(t, ro, id), want) {
		t.Errorf("read-only Get differs")
	}
	if err := ro.Put(context.Background(), id, []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only Put: %v", err)
	}
	if err := ro.Delete(context.Background(), id); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only Delete: %v", err)
	}
}

// TestPackListBatches: List crosses its read transactions' batches without
// skipping or repeating a chunk.
func TestPackListBatches(t *testing.T) {
	s := mustOpenPacks(t, newPackStore(t), Options{})
	ctx := context.Background()
	want := map[chunkstore.ID]bool{}
	for i := range 2*listBatch + 7 {
		data := []byte(fmt.Sprintf("chunk %d", i))
		id := chunkstore.HashBLAKE3.Sum(data)
		if err := s.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		want[id] = true
		if i == listBatch {
			if err := s.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[chunkstore.ID]bool{}
	if err := s.List(ctx, func(i chunkstore.Info) error {
		if got[i.ID] {
			t.Errorf("List reported %s twice", i.ID.Str())
		}
		got[i.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("List reported %d chunks, want %d", len(got), len(want))
	}
}

// TestPackCrashKill kills a process that is putting, deleting and syncing
// chunks, at a different moment each round, and reopens the store: every
// chunk it reported synced (and did not delete) reads back and verifies,
// and every chunk Has or List reports reads back and verifies.
func TestPackCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := newPackStore(t)
	ctx := context.Background()
	for round := range 4 {
		seed := uint64(round) * 100000
		synced := killChildAfter(t, packCrashChildEnv, dir, seed, uint64(10+7*round),
			time.Duration(round)*700*time.Microsecond)

		ds, err := OpenDir(ctx, dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := chunkstore.NewEncoded(ds, chunkstore.HashBLAKE3, chunkstore.CompressionNone)
		if err != nil {
			t.Fatal(err)
		}
		for i := seed; i < synced; i++ {
			id, data := testChunk(i)
			got, err := s.Get(ctx, id)
			if i%7 == 3 {
				if !errors.Is(err, chunkstore.ErrNotFound) {
					t.Errorf("round %d: chunk %d, deleted before a Sync: %v; want ErrNotFound", round, i, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("round %d: chunk %d of %d synced: %v", round, i-seed, synced-seed, err)
			}
		}
		if err := s.List(ctx, func(info chunkstore.Info) error {
			if _, err := s.Get(ctx, info.ID); err != nil {
				t.Errorf("round %d: listed chunk %s: %v", round, info.ID.Str(), err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

const packCrashChildEnv = "CASFS_TEST_PACK_CRASH_CHILD"

// TestPackFlushFailureReachesSync: a background fdatasync that fails
// consumes the writeback error, so the next Sync must report it instead.
func TestPackFlushFailureReachesSync(t *testing.T) {
	oldKick, oldFlush, oldSync := packKickEvery, packFlushEvery, syncPack
	t.Cleanup(func() { packKickEvery, packFlushEvery, syncPack = oldKick, oldFlush, oldSync })
	packKickEvery, packFlushEvery = 64<<10, 64<<10
	var failed atomic.Bool
	syncPack = func(*os.File) error {
		if failed.CompareAndSwap(false, true) {
			return syscall.EIO
		}
		return nil
	}
	s := mustOpenPacks(t, newPackStore(t), Options{})
	for i := range 40 {
		put(t, s, uint64(700+i))
	}
	s.flushes.Wait()
	if !failed.Load() {
		t.Fatal("no background fdatasync ran")
	}
	if err := s.Sync(context.Background()); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync after a failed background flush: %v; want EIO", err)
	}
}

// TestPackSyncOrdering checks the order Sync's steps reach the disk in, as
// a power cut would see it: every record the index points to had been made
// durable (fdatasync of its pack, up to at least its end) before the index
// was committed, and no record is punched out while the index still points
// to it. Puts, deletes and syncs run concurrently over several packs.
func TestPackSyncOrdering(t *testing.T) {
	smallPacks(t)
	oldCP := checkpointChanges
	checkpointChanges = 8 // index as the test goes, not only at Close
	t.Cleanup(func() { checkpointChanges = oldCP })
	s := mustOpenPacks(t, newPackStore(t), Options{})
	ctx := context.Background()
	var mu sync.Mutex
	durable := map[string]int64{} // pack path → size at its last fdatasync
	oldSync, oldPunch := syncPack, punch
	t.Cleanup(func() { syncPack, punch = oldSync, oldPunch })
	syncPack = func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := oldSync(f); err != nil {
			return err
		}
		mu.Lock()
		durable[f.Name()] = max(durable[f.Name()], st.Size())
		mu.Unlock()
		return nil
	}
	indexPoints := func(l packLoc) bool {
		found := false
		s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bktChunks).ForEach(func(k, v []byte) error {
				if got, _ := decodeLoc(v); got == l {
					found = true
				}
				return nil
			})
		})
		return found
	}
	var punched atomic.Int64
	punch = func(f *os.File, l packLoc) {
		if indexPoints(l) {
			t.Errorf("punching %s at %d while the index points there", f.Name(), l.off)
		}
		punched.Add(1)
		oldPunch(f, l)
	}
	checkIndex := func() {
		mu.Lock()
		defer mu.Unlock()
		s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(bktChunks).ForEach(func(k, v []byte) error {
				l, _ := decodeLoc(v)
				if end := l.off + recHeader + int64(l.n); durable[s.packPath(l.pack)] < end {
					t.Errorf("index points to %s up to %d, only %d of it made durable", packName(l.pack), end, durable[s.packPath(l.pack)])
				}
				return nil
			})
		})
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				seed := uint64(g*1000 + i)
				id, data := testChunk(seed)
				if err := s.Put(ctx, id, data); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 2 {
					if err := s.Delete(ctx, id); err != nil {
						t.Error(err)
						return
					}
				}
				if i%4 == 3 {
					if err := s.Sync(ctx); err != nil {
						t.Error(err)
						return
					}
					checkIndex()
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	checkIndex()
	if punched.Load() == 0 {
		t.Errorf("nothing was punched out: the deletes were not exercised")
	}
	if indexLen(t, s) == 0 {
		t.Errorf("nothing was indexed: no checkpoint ran")
	}
}

// crash ends s as a killed process would: what Sync made durable stays,
// and nothing is checkpointed or closed in order.
func crash(t *testing.T, s *PackStore) {
	t.Helper()
	s.flushes.Wait()
	s.mu.Lock()
	for _, pf := range s.open {
		pf.f.Close()
		if pf.direct != nil {
			pf.direct.Close()
		}
	}
	s.mu.Unlock()
	s.db.Close()
	unlockStore(s.lock)
	s.lock = nil // Close does nothing now
}

// TestPackRecovery: chunks a Sync made durable but no checkpoint indexed
// are found again by the next Open, read-only or not; a torn record (its
// bytes not what its CRC says) is not.
func TestPackRecovery(t *testing.T) {
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	ctx := context.Background()
	var ids []chunkstore.ID
	for i := range 6 {
		ids = append(ids, put(t, s, uint64(900+i)))
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := indexLen(t, s); n != 0 {
		t.Fatalf("%d chunks indexed before any checkpoint", n)
	}
	torn := ids[2]
	path, off, n, err := s.Locate(torn)
	if err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, n/2), off+int64(n/2)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	check := func(s *PackStore, what string) {
		for i, id := range ids {
			got, err := s.Get(ctx, id)
			_, want := testChunk(uint64(900 + i))
			switch {
			case id == torn && !errors.Is(err, chunkstore.ErrNotFound):
				t.Errorf("%s: the torn chunk: %v; want ErrNotFound", what, err)
			case id != torn && (err != nil || !bytes.Equal(got, want)):
				t.Errorf("%s: chunk %d: %v", what, i, err)
			}
		}
	}
	ro := mustOpenPacks(t, dir, Options{ReadOnly: true})
	check(ro, "read-only open")
	ro.Close()
	s = mustOpenPacks(t, dir, Options{})
	check(s, "open")
	if n := indexLen(t, s); n != len(ids)-1 {
		t.Errorf("the open indexed %d recovered chunks, want %d", n, len(ids)-1)
	}
	// Recovered once: a second crash and open finds them in the index.
	crash(t, s)
	s = mustOpenPacks(t, dir, Options{})
	check(s, "second open")
}

// TestPackManyPacksFewDescriptors: with more packs than descriptors it
// keeps open, concurrent reads across all of them still return every chunk
// whole (the packs past the limit are opened for each read), and no more
// than the limit stay open.
func TestPackManyPacksFewDescriptors(t *testing.T) {
	smallPacks(t)
	old := maxOpenPacks
	maxOpenPacks = 2
	t.Cleanup(func() { maxOpenPacks = old })
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	ctx := context.Background()
	const n = 40
	for i := range n {
		put(t, s, uint64(5000+i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c := countPacks(t, dir); c < 8 {
		t.Fatalf("%d chunks made %d packs; want many more than 2", n, c)
	}
	s = mustOpenPacks(t, dir, Options{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for i := range n {
					seed := uint64(5000 + (i*7+g*13+round*5)%n)
					id, want := testChunk(seed)
					got, err := s.Get(ctx, id)
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("chunk %d: %v", seed, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	s.mu.Lock()
	open := len(s.open)
	s.mu.Unlock()
	if open > 2 {
		t.Errorf("%d packs open, limit 2", open)
	}
}

// TestPackLongPutCheckpoints: a long run of Puts without a Sync (one huge
// commit) checkpoints by itself, so that what Open might have to read back
// after a crash stays bounded.
func TestPackLongPutCheckpoints(t *testing.T) {
	old := checkpointBytes
	checkpointBytes = 512 << 10
	t.Cleanup(func() { checkpointBytes = old })
	s := mustOpenPacks(t, newPackStore(t), Options{})
	for i := range 40 {
		put(t, s, uint64(3000+i))
	}
	if n := indexLen(t, s); n < 20 {
		t.Errorf("after 40 Puts of ~50 KiB with a checkpoint every 512 KiB, %d indexed", n)
	}
	if u := s.unindexed.Load(); u >= 2*checkpointBytes {
		t.Errorf("%d bytes unindexed", u)
	}
}

// TestPackWrongCountKeepsPack: a pack whose count in the index says it is
// empty while index entries still point into it is not removed.
func TestPackWrongCountKeepsPack(t *testing.T) {
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	id := put(t, s, 77)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpenPacks(t, dir, Options{})
	path, _, _, err := s.Locate(id)
	if err != nil {
		t.Fatal(err)
	}
	l, _, _ := s.indexed(id)
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktPacks).Put(packKey(l.pack), make([]byte, 8))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpenPacks(t, dir, Options{})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the pack went: %v", err)
	}
	if _, want := testChunk(77); !bytes.Equal(mustGet(t, s, id), want) {
		t.Errorf("the chunk differs")
	}
	var cnt uint64
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bktPacks).Get(packKey(l.pack)); len(v) == 8 {
			cnt = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if cnt != 1 {
		t.Errorf("the pack's count is %d after the open, want it set right (1)", cnt)
	}
}

// TestPackIndexRebuilt: a damaged index is refused with a hint, and with
// the index moved aside the next Open finds every chunk again in the packs.
func TestPackIndexRebuilt(t *testing.T) {
	dir := newPackStore(t)
	s := mustOpenPacks(t, dir, Options{})
	var ids []chunkstore.ID
	for i := range 5 {
		ids = append(ids, put(t, s, uint64(600+i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, indexName)
	if err := os.WriteFile(idx, bytes.Repeat([]byte{0xa5}, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(context.Background(), dir, Options{}); err == nil || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("Open with a damaged index: %v; want an error saying how to rebuild it", err)
	}
	if err := os.Rename(idx, idx+".damaged"); err != nil {
		t.Fatal(err)
	}
	s = mustOpenPacks(t, dir, Options{})
	for i, id := range ids {
		if _, want := testChunk(uint64(600 + i)); !bytes.Equal(mustGet(t, s, id), want) {
			t.Errorf("chunk %d differs after the rebuild", i)
		}
	}
	if n := indexLen(t, s); n != len(ids) {
		t.Errorf("the rebuilt index has %d chunks, want %d", n, len(ids))
	}
}
