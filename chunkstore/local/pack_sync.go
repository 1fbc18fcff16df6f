package local

// The packs layout's durability: Sync, checkpoints, recovery at Open, and
// the removal of empty packs. See "Packs" in the package documentation.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
)

// recoverRecords finds the records the index lacks: those at or past the
// watermark that are whole (their CRC matches) and of chunks the index does
// not have. They were made durable by a Sync whose changes no checkpoint
// wrote to the index before the process ended (a crash; Close
// checkpoints). A read-write open indexes them and moves the watermark
// past every pack; a read-only one keeps them as pending.
func (s *PackStore) recoverRecords(packs []uint32) error {
	var mark packLoc
	if s.db != nil {
		err := s.db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bktMeta); b != nil {
				if v := b.Get(keyWatermark); v != nil {
					var ok bool
					if mark, ok = decodeLoc(v); !ok {
						return fmt.Errorf("index watermark is %d bytes, not 16", len(v))
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	sort.Slice(packs, func(i, j int) bool { return packs[i] < packs[j] })
	found := map[chunkstore.ID]packOp{}
	for _, n := range packs {
		if n < mark.pack {
			continue
		}
		from := int64(0)
		if n == mark.pack {
			from = mark.off
		}
		err := scanPack(s.packPath(n), n, from, func(id chunkstore.ID, l packLoc) error {
			if _, dup := found[id]; dup {
				return nil
			}
			if _, indexed, err := s.indexed(id); err != nil || indexed {
				return err
			}
			found[id] = packOp{loc: l}
			return nil
		})
		if err != nil {
			return fmt.Errorf("recovering %s: %w", s.packPath(n), err)
		}
	}
	if s.readOnly {
		for id, op := range found {
			s.seq++
			op.seq = s.seq
			s.pending[id] = op
		}
		return nil
	}
	if len(found) == 0 {
		return nil // the watermark may stay: nothing before it is new
	}
	next := packLoc{pack: s.next}
	return s.apply(found, func(tx *bolt.Tx) error {
		return tx.Bucket(bktMeta).Put(keyWatermark, next.encode())
	})
}

// scanPack calls fn for every whole record of pack n at or after offset
// from. Records start at multiples of recAlign; a place without a whole
// record there (never written, torn by a crash, or punched out) is
// skipped, holes by SEEK_DATA.
func scanPack(path string, n uint32, from int64, fn func(chunkstore.ID, packLoc) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	var hdr [recHeader]byte
	var buf []byte
	for pos := alignUp(from); pos+recHeader <= size; {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return err
		}
		dlen := int64(binary.BigEndian.Uint32(hdr[4:]))
		if string(hdr[:4]) == recMagic && dlen <= maxRecord && pos+recHeader+dlen <= size {
			if int64(cap(buf)) < dlen {
				buf = make([]byte, dlen)
			}
			data := buf[:dlen]
			if _, err := f.ReadAt(data, pos+recHeader); err != nil {
				return err
			}
			if recordCRC(&hdr, data) == binary.BigEndian.Uint32(hdr[40:]) {
				var id chunkstore.ID
				copy(id[:], hdr[8:40])
				if err := fn(id, packLoc{pack: n, off: pos, n: uint32(dlen)}); err != nil {
					return err
				}
				pos = alignUp(pos + recHeader + dlen)
				continue
			}
		}
		next, err := unix.Seek(int(f.Fd()), pos+recAlign, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: only a hole is left
		}
		pos = max(pos+recAlign, next&^(recAlign-1))
	}
	return nil
}

// removeDeadPacks deletes the pack files that no indexed record is left in
// (a gc deleted them all, and a Sync recorded it) and forgets them.
func (s *PackStore) removeDeadPacks() error {
	var dead []uint32
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktPacks).ForEach(func(k, v []byte) error {
			if len(k) == 4 && len(v) == 8 && binary.BigEndian.Uint64(v) == 0 {
				dead = append(dead, binary.BigEndian.Uint32(k))
			}
			return nil
		})
	})
	if err != nil || len(dead) == 0 {
		return err
	}
	// The counts say these packs hold nothing the index points to. A
	// pack is removed only if the index agrees, entry by entry: a wrong
	// count must not cost a chunk. (A full pass over the index, but only
	// at an Open after a gc emptied a pack.)
	live := map[uint32]uint64{}
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktChunks).ForEach(func(k, v []byte) error {
			if l, ok := decodeLoc(v); ok {
				live[l.pack]++
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var miscounted []uint32
	dead = slices.DeleteFunc(dead, func(n uint32) bool {
		if live[n] > 0 {
			miscounted = append(miscounted, n)
			return true
		}
		return false
	})
	for _, n := range dead {
		if err := os.Remove(s.packPath(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// The files go first: a crash in between leaves entries for files
	// that are gone, which the next Open removes again.
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktPacks)
		for _, n := range dead {
			if err := b.Delete(packKey(n)); err != nil {
				return err
			}
		}
		for _, n := range miscounted {
			if err := b.Put(packKey(n), binary.BigEndian.AppendUint64(nil, live[n])); err != nil {
				return err
			}
		}
		return nil
	})
}

// flush fdatasyncs pf in the background. On this project's virtual
// machines the disk's write cache is the host's, and the cache flush an
// fdatasync ends with takes about as long as the data it flushes took to
// write: 1 GiB put with one fdatasync at its end spent a third of its time
// in that flush with the disk idle. Flushing as the pack grows spreads
// that cost over the put, as the files layout's background syncfs does.
// It promises nothing; only Sync makes chunks durable.
func (s *PackStore) flush(pf *packFile) {
	defer s.flushes.Done()
	defer s.flushing.Store(false)
	if err := syncPack(pf.f); err != nil && !errors.Is(err, os.ErrClosed) {
		err = &fs.PathError{Op: "fdatasync", Path: pf.f.Name(), Err: err}
		s.flushErr.CompareAndSwap(nil, &err)
	}
}

// Sync is the durability barrier: it makes the packs written since the
// last Sync durable (fdatasync, and the packs directory if it has a new
// name), which makes the pending puts durable: Open finds them past the
// watermark should the process end before a checkpoint indexes them.
// Pending deletes it takes out of the index in one transaction (which
// bbolt makes durable before it returns), and only then punches their
// records out, so that an index entry never points at freed blocks. When a
// checkpoint is due it makes one (see checkpointHeld).
//
// One Sync runs at a time; a Sync that had to wait usually finds its
// changes made already. If making packs durable fails, what reached the
// disk is unknown: that Sync and every later one fail until the store is
// reopened (as for the files layout).
func (s *PackStore) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return nil
	}
	return s.syncSem.do(ctx, func() error { return s.syncHeld(ctx) })
}

// syncSoon is Put's Sync when a checkpoint is due: it syncs unless a Sync
// is running already.
func (s *PackStore) syncSoon(ctx context.Context) error {
	return s.syncSem.try(func() error { return s.syncHeld(ctx) })
}

func (s *PackStore) syncHeld(ctx context.Context) error {
	if s.failed != nil {
		return s.failed
	}
	if err := s.syncDirty(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		// The puts are durable; deletes stay pending.
		return err
	}
	s.mu.Lock()
	dels := map[chunkstore.ID]packOp{}
	puts := 0
	for id, op := range s.pending {
		if op.del {
			dels[id] = op
		} else {
			puts++
		}
	}
	s.mu.Unlock()
	if len(dels) > 0 {
		// Out of the index first, durably; punched out after.
		if err := s.apply(dels, nil); err != nil {
			return err
		}
	}
	if puts >= checkpointChanges || s.unindexed.Load() >= checkpointBytes {
		return s.checkpointHeld()
	}
	return nil
}

// syncDirty makes the packs written since the last call durable, and the
// packs directory if it has a new name. A failure sticks (see Sync).
func (s *PackStore) syncDirty() error {
	s.mu.Lock()
	files := make([]*packFile, 0, len(s.dirty))
	for _, pf := range s.dirty {
		files = append(files, pf)
	}
	clear(s.dirty)
	newPack := s.newPack
	s.newPack = false
	s.mu.Unlock()
	err := syncPacks(files)
	if p := s.flushErr.Load(); p != nil && err == nil {
		err = *p
	}
	if err == nil && newPack {
		err = syncPath(filepath.Join(s.dir, packsName))
	}
	if err != nil {
		s.failed = fmt.Errorf("store %s: sync: %w (reopen the store to go on)", s.dir, err)
		return s.failed
	}
	return nil
}

// Variables so tests can make them small.
var (
	// checkpointChanges and checkpointBytes say when a Sync also writes
	// the pending puts to the index (see checkpointHeld): when that many
	// are pending, or their records take that many bytes. The bytes bound
	// what Open has to read back after a crash.
	checkpointChanges       = 4096
	checkpointBytes   int64 = 512 << 20
)

// checkpointHeld writes every pending change to the index in one
// transaction, with the watermark moved past every record written so far,
// and then punches out the records the changes made dead. It holds putMu,
// so that no Put is between reserving a record and recording it as
// pending: every record below the new watermark is then either in the
// transaction or dead. syncSem must be held.
func (s *PackStore) checkpointHeld() error {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if err := s.syncDirty(); err != nil {
		return err
	}
	s.mu.Lock()
	batch := make(map[chunkstore.ID]packOp, len(s.pending))
	for id, op := range s.pending {
		batch[id] = op
	}
	mark := packLoc{pack: s.next}
	var ours []uint32
	for n, pf := range s.open {
		if pf.ours {
			ours = append(ours, n)
		}
	}
	if s.cur != nil {
		mark = packLoc{pack: s.cur.n, off: s.cur.size}
	}
	s.unindexed.Store(0) // no Put runs: putMu is held
	s.mu.Unlock()
	return s.apply(batch, func(tx *bolt.Tx) error {
		// A pack this Store made gets its count now, even at zero, so
		// that one whose records were all deleted before they were ever
		// indexed is removed at the next Open all the same.
		packs := tx.Bucket(bktPacks)
		for _, n := range ours {
			if packs.Get(packKey(n)) == nil {
				if err := packs.Put(packKey(n), make([]byte, 8)); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bktMeta).Put(keyWatermark, mark.encode())
	})
}

// apply writes batch's changes to the index in one transaction (with more,
// if not nil), takes them out of the pending set (those not changed again
// meanwhile), and then punches out the records they made dead.
func (s *PackStore) apply(batch map[chunkstore.ID]packOp, more func(*bolt.Tx) error) error {
	var dead []packLoc
	err := s.db.Update(func(tx *bolt.Tx) error {
		dead = dead[:0]
		chunks, packs := tx.Bucket(bktChunks), tx.Bucket(bktPacks)
		delta := map[uint32]int64{}
		for id, op := range batch {
			dead = append(dead, op.punch...)
			if v := chunks.Get(id[:]); v != nil {
				if old, ok := decodeLoc(v); ok {
					if !op.del && old == op.loc {
						continue // recovered twice
					}
					delta[old.pack]--
					if !containsLoc(op.punch, old) {
						dead = append(dead, old)
					}
				}
			}
			if op.del {
				if err := chunks.Delete(id[:]); err != nil {
					return err
				}
				continue
			}
			if err := chunks.Put(id[:], op.loc.encode()); err != nil {
				return err
			}
			delta[op.loc.pack]++
		}
		for n, d := range delta {
			if d == 0 {
				continue
			}
			var cnt int64
			if v := packs.Get(packKey(n)); len(v) == 8 {
				cnt = int64(binary.BigEndian.Uint64(v))
			}
			cnt = max(0, cnt+d)
			if err := packs.Put(packKey(n), binary.BigEndian.AppendUint64(nil, uint64(cnt))); err != nil {
				return err
			}
		}
		if more != nil {
			return more(tx)
		}
		return nil
	})
	if err != nil {
		// bbolt rolled the transaction back: the batch stays pending.
		return fmt.Errorf("store %s: sync: index: %w", s.dir, err)
	}
	s.mu.Lock()
	for id, op := range batch {
		if cur, ok := s.pending[id]; ok && cur.seq == op.seq {
			delete(s.pending, id)
		}
	}
	s.mu.Unlock()
	for _, l := range dead {
		if _, f, done, err := s.file(l.pack); err == nil {
			punch(f, l)
			done()
		}
	}
	return nil
}

func containsLoc(ls []packLoc, l packLoc) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// syncPacks fdatasyncs the packs, a few at a time.
func syncPacks(files []*packFile) error {
	sort.Slice(files, func(i, j int) bool { return files[i].n < files[j].n })
	for _, pf := range files {
		if err := syncPack(pf.f); err != nil {
			return &fs.PathError{Op: "fdatasync", Path: pf.f.Name(), Err: err}
		}
	}
	return nil
}

// syncPack makes a pack's data and size durable. A variable for the tests.
var syncPack = func(f *os.File) error { return withFd(f, unix.Fdatasync) }
