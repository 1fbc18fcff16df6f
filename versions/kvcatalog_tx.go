package versions

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// Bucket names; the layout is described in kvcatalog_codec.go.
var (
	bktMeta     = []byte("meta")
	bktInodes   = []byte("inodes")
	bktDirents  = []byte("dirents")
	bktNames    = []byte("names")
	bktDeleted  = []byte("deleted")
	bktDIndex   = []byte("dindex")
	bktVersions = []byte("versions")
	bktXattrs   = []byte("xattrs")

	allBuckets = [][]byte{bktMeta, bktInodes, bktDirents, bktNames, bktDeleted, bktDIndex, bktVersions, bktXattrs}

	metaSchema  = []byte("schema")
	metaNextIno = []byte("nextino")
	metaLastVer = []byte("lastver")
	metaDelSeq  = []byte("delseq")
	metaGCFence = []byte("gcfence")
)

// kvTxn is one read-write transaction. Inodes it reads are cached and
// written back once by flush, so an operation that touches the same
// directory under two roles (rename within one directory, a purge that
// updates a parent it then drops) never writes a stale copy over a newer
// one.
type kvTxn struct {
	tx  KVTx
	now time.Time

	meta, inodes, dirents, names, deleted, dindex, versions, xattrs KVBucket

	cache map[Ino]*Attr
	dirty map[Ino]bool
}

func newKVTxn(tx KVTx, now time.Time) (*kvTxn, error) {
	w := &kvTxn{tx: tx, now: now, cache: map[Ino]*Attr{}, dirty: map[Ino]bool{}}
	for _, b := range []struct {
		name []byte
		p    *KVBucket
	}{
		{bktMeta, &w.meta}, {bktInodes, &w.inodes}, {bktDirents, &w.dirents},
		{bktNames, &w.names}, {bktDeleted, &w.deleted}, {bktDIndex, &w.dindex},
		{bktVersions, &w.versions}, {bktXattrs, &w.xattrs},
	} {
		if *b.p = tx.Bucket(b.name); *b.p == nil {
			return nil, fmt.Errorf("catalog corrupt: bucket %s missing", b.name)
		}
	}
	return w, nil
}

// inode returns ino's record for reading and changing; call touch after a
// change. A missing inode is ErrNotExist.
func (w *kvTxn) inode(ino Ino) (*Attr, error) {
	if a, ok := w.cache[ino]; ok {
		return a, nil
	}
	v := w.inodes.Get(inoKey(ino))
	if v == nil {
		return nil, fmt.Errorf("inode %d: %w", ino, ErrNotExist)
	}
	a, err := decodeInode(ino, v)
	if err != nil {
		return nil, err
	}
	w.cache[ino] = &a
	return &a, nil
}

// liveDir returns a directory that still has a name: the only kind new
// entries can go into.
func (w *kvTxn) liveDir(ino Ino) (*Attr, error) {
	a, err := w.inode(ino)
	if err != nil {
		return nil, err
	}
	if !a.IsDir() {
		return nil, fmt.Errorf("inode %d: %w", ino, ErrNotDir)
	}
	if a.Nlink == 0 {
		return nil, fmt.Errorf("directory %d was removed: %w", ino, ErrNotExist)
	}
	return a, nil
}

// touch marks a changed inode for flush.
func (w *kvTxn) touch(a *Attr) {
	w.cache[a.Ino] = a
	w.dirty[a.Ino] = true
}

// changed sets a directory's mtime and ctime to now, as an entry change does.
func (w *kvTxn) changed(dir *Attr) {
	dir.Mtime, dir.Ctime = w.now, w.now
	w.touch(dir)
}

func (w *kvTxn) flush() error {
	for ino := range w.dirty {
		if err := w.inodes.Put(inoKey(ino), encodeInode(w.cache[ino])); err != nil {
			return err
		}
	}
	return nil
}

// counter increments a meta counter and returns the new value.
func (w *kvTxn) counter(key []byte) (uint64, error) {
	var n uint64
	if v := w.meta.Get(key); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	} else if v != nil {
		return 0, fmt.Errorf("catalog corrupt: meta %s", key)
	}
	n++
	return n, w.meta.Put(key, beUint64(n))
}

func (w *kvTxn) newIno() (Ino, error) {
	n, err := w.counter(metaNextIno)
	return Ino(n), err
}

// newVersionID returns an ID after every one handed out before, even when
// the clock stands still or steps back.
func (w *kvTxn) newVersionID() (VersionID, error) {
	nanos := w.now.UnixNano()
	if v := w.meta.Get(metaLastVer); len(v) == 8 {
		if last := int64(binary.BigEndian.Uint64(v)); nanos <= last {
			nanos = last + 1
		}
	} else if v != nil {
		return VersionID{}, fmt.Errorf("catalog corrupt: meta %s", metaLastVer)
	}
	return VersionID{Nanos: nanos}, w.meta.Put(metaLastVer, beUint64(uint64(nanos)))
}

// dirent looks up name in parent.
func (w *kvTxn) dirent(parent Ino, name string) (ino Ino, mode uint32, ok bool, err error) {
	v := w.dirents.Get(inoNameKey(parent, name))
	if v == nil {
		return 0, 0, false, nil
	}
	ino, mode, err = parseDirentVal(v)
	return ino, mode, err == nil, err
}

func (w *kvTxn) putDirent(parent Ino, name string, ino Ino, mode uint32) error {
	if err := w.dirents.Put(inoNameKey(parent, name), direntVal(ino, mode&ModeType)); err != nil {
		return err
	}
	return w.names.Put(backlinkKey(ino, parent, name), nil)
}

func (w *kvTxn) delDirent(parent Ino, name string, ino Ino) error {
	if err := w.dirents.Delete(inoNameKey(parent, name)); err != nil {
		return err
	}
	return w.names.Delete(backlinkKey(ino, parent, name))
}

// prefixKeys returns copies of b's keys that start with prefix, to delete
// or visit after the scan (a KV's scan must not see changes made during it).
func prefixKeys(b KVBucket, prefix []byte) [][]byte {
	var keys [][]byte
	// A scan error is the KV's to report: it fails the transaction.
	_ = b.Scan(prefix, nil, func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	return keys
}

// errFound stops a scan at its first key.
var errFound = errors.New("found")

// firstKey returns a copy of b's first key with prefix, nil if none.
func firstKey(b KVBucket, prefix []byte) []byte {
	var first []byte
	_ = b.Scan(prefix, nil, func(k, _ []byte) error {
		first = bytes.Clone(k)
		return errFound
	})
	return first
}

func anyPrefix(b KVBucket, prefix []byte) bool { return firstKey(b, prefix) != nil }

func deletePrefix(b KVBucket, prefix []byte) error {
	for _, k := range prefixKeys(b, prefix) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// hasChildren reports whether dir has live entries.
func (w *kvTxn) hasChildren(dir Ino) bool { return anyPrefix(w.dirents, inoKey(dir)) }

// hasDeleted reports whether dir has deleted entries.
func (w *kvTxn) hasDeleted(dir Ino) bool { return anyPrefix(w.deleted, inoKey(dir)) }

func (w *kvTxn) hasVersions(ino Ino) bool { return anyPrefix(w.versions, inoKey(ino)) }

// parentOf returns the directory holding a live directory's name.
func (w *kvTxn) parentOf(dir Ino) (Ino, error) {
	prefix := inoKey(dir)
	k := firstKey(w.names, prefix)
	if len(k) < 16 {
		return 0, fmt.Errorf("catalog corrupt: directory %d has no name", dir)
	}
	return keyIno(k[8:]), nil
}

// checkNotBelow fails with ErrInvalid if dir is ino or lies below it, by
// walking parent links up to the root.
func (w *kvTxn) checkNotBelow(dir, ino Ino) error {
	for depth := 0; ; depth++ {
		if dir == ino {
			return fmt.Errorf("directory %d would move below itself: %w", ino, ErrInvalid)
		}
		if dir == RootIno {
			return nil
		}
		if depth > 1<<20 {
			return fmt.Errorf("catalog corrupt: parent loop above directory %d", dir)
		}
		p, err := w.parentOf(dir)
		if err != nil {
			return err
		}
		dir = p
	}
}

// dropInode deletes an inode with its versions and xattrs. Its names and
// deleted entry are the caller's business.
func (w *kvTxn) dropInode(ino Ino) error {
	delete(w.cache, ino)
	delete(w.dirty, ino)
	k := inoKey(ino)
	if err := deletePrefix(w.versions, k); err != nil {
		return err
	}
	if err := deletePrefix(w.xattrs, k); err != nil {
		return err
	}
	return w.inodes.Delete(k)
}

// addDeleted lists a with Nlink 0 among parent's deleted entries.
func (w *kvTxn) addDeleted(parent Ino, name string, a *Attr) error {
	seq, err := w.counter(metaDelSeq)
	if err != nil {
		return err
	}
	k := deletedKey(parent, name, w.now, a.Ino)
	if err := w.deleted.Put(k, deletedVal(a.Mode, seq)); err != nil {
		return err
	}
	a.Nlink = 0
	w.touch(a)
	return w.dindex.Put(inoKey(a.Ino), k)
}

// unlistDeleted removes ino's deleted entry if it has one and returns the
// directory it was listed in (0 if none).
func (w *kvTxn) unlistDeleted(ino Ino) (Ino, error) {
	ik := inoKey(ino)
	k := w.dindex.Get(ik)
	if k == nil {
		return 0, nil
	}
	k = bytes.Clone(k)
	if err := w.deleted.Delete(k); err != nil {
		return 0, err
	}
	if err := w.dindex.Delete(ik); err != nil {
		return 0, err
	}
	return keyIno(k), nil
}

// dropEmptyDeleted drops a removed directory once its last deleted entry is
// gone, and so on up: it was only kept to reach the history below it.
func (w *kvTxn) dropEmptyDeleted(dir Ino) error {
	for dir != 0 {
		a, err := w.inode(dir)
		if err != nil || !a.IsDir() || a.Nlink != 0 || w.hasDeleted(dir) || w.hasChildren(dir) {
			return nil
		}
		parent, err := w.unlistDeleted(dir)
		if err != nil {
			return err
		}
		if err := w.dropInode(dir); err != nil {
			return err
		}
		dir = parent
	}
	return nil
}

// unlink removes the entry parent/name naming ino, as unlink(2), rmdir(2) or
// a rename over it do. The caller has checked the types and that a
// directory is empty.
func (w *kvTxn) unlink(parent *Attr, name string, ino Ino) error {
	a, err := w.inode(ino)
	if err != nil {
		return fmt.Errorf("catalog corrupt: entry %d/%q: %w", parent.Ino, name, err)
	}
	if err := w.delDirent(parent.Ino, name, ino); err != nil {
		return err
	}
	w.changed(parent)
	a.Ctime = w.now
	w.touch(a)
	keep := false
	if a.IsDir() {
		parent.Nlink--
		a.Nlink = 0
		keep = w.hasDeleted(ino)
	} else {
		if a.Nlink > 0 {
			a.Nlink--
		}
		if a.Nlink > 0 {
			return nil
		}
		keep = w.hasVersions(ino)
	}
	if keep {
		return w.addDeleted(parent.Ino, name, a)
	}
	return w.dropInode(ino)
}

// create is Catalog.Create within a transaction.
func (w *kvTxn) create(parent Ino, name string, a Attr) (Attr, error) {
	p, err := w.liveDir(parent)
	if err != nil {
		return Attr{}, err
	}
	if _, _, ok, err := w.dirent(parent, name); err != nil {
		return Attr{}, err
	} else if ok {
		return Attr{}, ErrExist
	}
	a.Mode &= ModeType | ModePerm
	a.Head, a.Recipe, a.Size, a.Holes = VersionID{}, chunkstore.ID{}, 0, 0
	if !a.IsDevice() {
		a.Rdev = 0
	}
	switch a.Mode & ModeType {
	case ModeDir:
		a.Nlink, a.Target = 2, ""
	case ModeRegular:
		a.Nlink, a.Target = 1, ""
	case ModeSymlink:
		a.Nlink, a.Size = 1, int64(len(a.Target))
		if a.Target == "" {
			return Attr{}, fmt.Errorf("empty symlink target: %w", ErrInvalid)
		}
		if len(a.Target) >= 4096 {
			return Attr{}, fmt.Errorf("symlink target of %d bytes: %w", len(a.Target), ErrNameLimit)
		}
	case ModeFifo, ModeSocket, ModeChar, ModeBlock:
		a.Nlink, a.Target = 1, ""
	default:
		return Attr{}, fmt.Errorf("mode %#o: not a file type: %w", a.Mode, ErrInvalid)
	}
	if a.Ino, err = w.newIno(); err != nil {
		return Attr{}, err
	}
	if a.Atime.IsZero() {
		a.Atime = w.now
	}
	if a.Mtime.IsZero() {
		a.Mtime = w.now
	}
	a.Ctime = w.now
	if err := w.putDirent(parent, name, a.Ino, a.Mode); err != nil {
		return Attr{}, err
	}
	if a.IsDir() {
		p.Nlink++
	}
	w.changed(p)
	w.touch(&a)
	return a, nil
}

// purge removes ino and everything below it. Inodes already gone (a hard
// link met twice) are skipped.
func (w *kvTxn) purge(ino Ino) error {
	a, err := w.inode(ino)
	if err != nil {
		return nil
	}
	ik := inoKey(ino)
	if a.IsDir() {
		for _, k := range prefixKeys(w.dirents, ik) {
			child, _, err := parseDirentVal(w.dirents.Get(k))
			if err != nil {
				return err
			}
			if err := w.purge(child); err != nil {
				return err
			}
		}
		for _, k := range prefixKeys(w.deleted, ik) {
			_, _, _, child, err := parseDeletedKey(k)
			if err != nil {
				return err
			}
			if err := w.purge(child); err != nil {
				return err
			}
		}
	}
	for _, k := range prefixKeys(w.names, ik) {
		if len(k) < 16 {
			return fmt.Errorf("catalog corrupt: bad name key %x", k)
		}
		parent, name := keyIno(k[8:]), string(k[16:])
		if err := w.delDirent(parent, name, ino); err != nil {
			return err
		}
		if p, err := w.inode(parent); err == nil {
			if a.IsDir() {
				p.Nlink--
			}
			w.changed(p)
		}
	}
	if _, err := w.unlistDeleted(ino); err != nil {
		return err
	}
	return w.dropInode(ino)
}
