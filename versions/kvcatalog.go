package versions

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// More catalog errors, matched with errors.Is like those in catalog.go.
var (
	// ErrPermission is a hard link to a directory (EPERM in POSIX).
	ErrPermission = errors.New("operation not permitted")
	// ErrInUse is returned by OpenBolt when another process holds the
	// metadata database.
	ErrInUse = errors.New("metadata database is in use")
)

// catalogSchema is the layout version written to meta/schema. A database
// with a newer or unknown schema is refused rather than misread. Schema 1
// (no holes in inode records and versions) is read as it is, and raised to
// 2 by the first open that may write: from then on records of both kinds
// are read, and a casfs that knows only schema 1 refuses the catalog by
// name instead of misreading the new records.
const (
	catalogSchema   = 2
	catalogSchemaV1 = 1
)

// Limits a catalog enforces, as Linux does.
const (
	maxNameLen       = 255
	maxXattrNameLen  = 255
	maxXattrValueLen = 64 << 10
)

// KVCatalog is a Catalog kept in the buckets of an ordered key-value
// database (KV): bbolt next to a local store, RADOS omap for a Ceph pool.
// Each method is one KV transaction, so each is atomic on every backend
// that makes Update atomic.
type KVCatalog struct {
	db  KV
	now func() time.Time
	ro  bool
}

var _ Catalog = (*KVCatalog)(nil)

// KVOptions configures NewKVCatalog. The zero value is ready to use.
type KVOptions struct {
	// Now is the catalog's clock (times, version IDs); time.Now if nil.
	Now func() time.Time
	// ReadOnly never writes: changes fail with ErrReadOnly, and a database
	// without a catalog is refused instead of initialized.
	ReadOnly bool
}

// NewKVCatalog opens the catalog in db, making a new one (with the root
// directory: RootIno, 0755, owned by the calling user) if db holds none. It
// does not close db on error.
func NewKVCatalog(ctx context.Context, db KV, opts KVOptions) (*KVCatalog, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &KVCatalog{db: db, now: opts.Now, ro: opts.ReadOnly}
	var err error
	if opts.ReadOnly {
		err = db.View(ctx, c.checkSchema)
	} else {
		err = db.Update(ctx, c.init)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (b *KVCatalog) checkSchema(tx KVTx) error {
	m := tx.Bucket(bktMeta)
	if m == nil {
		return errors.New("not a casfs catalog (no meta bucket)")
	}
	v := m.Get(metaSchema)
	if v == nil {
		return errors.New("not a casfs catalog (no schema key)")
	}
	if len(v) != 4 {
		return fmt.Errorf("not a casfs catalog (bad schema key %x)", v)
	}
	if s := binary.BigEndian.Uint32(v); s != catalogSchema && s != catalogSchemaV1 {
		if s > catalogSchema {
			return fmt.Errorf("catalog schema %d is newer than this casfs supports (%d); upgrade casfs", s, catalogSchema)
		}
		return fmt.Errorf("unknown catalog schema %d (this casfs supports %d)", s, catalogSchema)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("catalog corrupt: bucket %s missing", name)
		}
	}
	return nil
}

// init writes the schema and the root directory of a new catalog, or
// checks the schema of an existing one.
func (b *KVCatalog) init(tx KVTx) error {
	m := tx.Bucket(bktMeta)
	if m == nil || m.Get(metaSchema) != nil {
		if err := b.checkSchema(tx); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(m.Get(metaSchema)) == catalogSchemaV1 {
			return m.Put(metaSchema, binary.BigEndian.AppendUint32(nil, catalogSchema))
		}
		return nil
	}
	schema := make([]byte, 4)
	binary.BigEndian.PutUint32(schema, catalogSchema)
	if err := m.Put(metaSchema, schema); err != nil {
		return err
	}
	if err := m.Put(metaNextIno, beUint64(uint64(RootIno))); err != nil {
		return err
	}
	now := b.now().Round(0)
	root := Attr{
		Ino: RootIno, Mode: ModeDir | 0o755, Nlink: 2,
		Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()),
		Atime: now, Mtime: now, Ctime: now,
	}
	return tx.Bucket(bktInodes).Put(inoKey(RootIno), encodeInode(&root))
}

// Close closes the database. It is safe to call more than once.
func (b *KVCatalog) Close() error { return b.db.Close() }

// view runs fn in a read transaction.
func (b *KVCatalog) view(ctx context.Context, fn func(tx KVTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(ctx, fn)
}

// update runs fn in a write transaction and writes back the inodes it
// changed. fn may run more than once (KV.Update retries on conflict): it
// must only set results, never accumulate them.
func (b *KVCatalog) update(ctx context.Context, fn func(w *kvTxn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.ro {
		return ErrReadOnly
	}
	return b.db.Update(ctx, func(tx KVTx) error {
		// Round(0) drops the monotonic reading: stored times are wall
		// times, and returned ones should compare like stored ones.
		w, err := newKVTxn(tx, b.now().Round(0))
		if err != nil {
			return err
		}
		if err := fn(w); err != nil {
			return err
		}
		return w.flush()
	})
}

// checkEntryName validates one path component.
func checkEntryName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("name %q: %w", name, ErrInvalid)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name of %d bytes: %w", len(name), ErrNameLimit)
	}
	return nil
}

func getInode(tx KVTx, ino Ino) (Attr, error) {
	v := tx.Bucket(bktInodes).Get(inoKey(ino))
	if v == nil {
		return Attr{}, fmt.Errorf("inode %d: %w", ino, ErrNotExist)
	}
	return decodeInode(ino, v)
}

// GetAttr returns ino's attributes, also for a deleted inode.
func (b *KVCatalog) GetAttr(ctx context.Context, ino Ino) (a Attr, err error) {
	err = b.view(ctx, func(tx KVTx) error {
		a, err = getInode(tx, ino)
		return err
	})
	if err != nil {
		return Attr{}, fmt.Errorf("getattr: %w", err)
	}
	return a, nil
}

// Lookup returns the attributes of parent/name.
func (b *KVCatalog) Lookup(ctx context.Context, parent Ino, name string) (a Attr, err error) {
	if err := ctx.Err(); err != nil {
		return Attr{}, err
	}
	if err := checkEntryName(name); err != nil {
		return Attr{}, fmt.Errorf("lookup %d: %w", parent, err)
	}
	err = b.view(ctx, func(tx KVTx) error {
		v := tx.Bucket(bktDirents).Get(inoNameKey(parent, name))
		if v == nil {
			p, err := getInode(tx, parent)
			if err != nil {
				return err
			}
			if !p.IsDir() {
				return ErrNotDir
			}
			return ErrNotExist
		}
		ino, _, err := parseDirentVal(v)
		if err != nil {
			return err
		}
		if a, err = getInode(tx, ino); errors.Is(err, ErrNotExist) {
			return fmt.Errorf("catalog corrupt: entry points to missing inode %d", ino)
		}
		return err
	})
	if err != nil {
		return Attr{}, fmt.Errorf("lookup %d/%q: %w", parent, name, err)
	}
	return a, nil
}

// ReadDir lists dir's entries in name byte order.
func (b *KVCatalog) ReadDir(ctx context.Context, dir Ino) (ents []Dirent, err error) {
	err = b.view(ctx, func(tx KVTx) error {
		ents = nil // a KV may run this again
		d, err := getInode(tx, dir)
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return ErrNotDir
		}
		// Names are gathered in one buffer and become one string that the
		// entries slice: a listing of 20k files makes a few allocations, not
		// 20k.
		var buf []byte
		var ends []int
		prefix := inoKey(dir)
		err = tx.Bucket(bktDirents).Scan(prefix, nil, func(k, v []byte) error {
			ino, mode, err := parseDirentVal(v)
			if err != nil {
				return err
			}
			buf = append(buf, k[8:]...)
			ends = append(ends, len(buf))
			ents = append(ents, Dirent{Ino: ino, Mode: mode})
			return nil
		})
		if err != nil {
			return err
		}
		all, start := string(buf), 0
		for i, end := range ends {
			ents[i].Name = all[start:end]
			start = end
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("readdir %d: %w", dir, err)
	}
	return ents, nil
}

// Create implements Catalog.
func (b *KVCatalog) Create(ctx context.Context, parent Ino, name string, a Attr) (out Attr, err error) {
	if err := ctx.Err(); err != nil {
		return Attr{}, err
	}
	if err := checkEntryName(name); err != nil {
		return Attr{}, fmt.Errorf("create in %d: %w", parent, err)
	}
	err = b.update(ctx, func(w *kvTxn) error {
		out, err = w.create(parent, name, a)
		return err
	})
	if err != nil {
		return Attr{}, fmt.Errorf("create %d/%q: %w", parent, name, err)
	}
	return out, nil
}

// Link implements Catalog. Linking a directory is ErrPermission; linking an
// inode that has no name left is ErrNotExist.
func (b *KVCatalog) Link(ctx context.Context, ino Ino, parent Ino, name string) (out Attr, err error) {
	if err := ctx.Err(); err != nil {
		return Attr{}, err
	}
	if err := checkEntryName(name); err != nil {
		return Attr{}, fmt.Errorf("link %d into %d: %w", ino, parent, err)
	}
	err = b.update(ctx, func(w *kvTxn) error {
		a, err := w.inode(ino)
		if err != nil {
			return err
		}
		if a.IsDir() {
			return ErrPermission
		}
		if a.Nlink == 0 {
			return fmt.Errorf("inode %d is deleted: %w", ino, ErrNotExist)
		}
		p, err := w.liveDir(parent)
		if err != nil {
			return err
		}
		if _, _, ok, err := w.dirent(parent, name); err != nil {
			return err
		} else if ok {
			return ErrExist
		}
		if err := w.putDirent(parent, name, ino, a.Mode); err != nil {
			return err
		}
		a.Nlink++
		a.Ctime = w.now
		w.touch(a)
		w.changed(p)
		out = *a
		return nil
	})
	if err != nil {
		return Attr{}, fmt.Errorf("link %d as %d/%q: %w", ino, parent, name, err)
	}
	return out, nil
}

// SetAttr implements Catalog.
func (b *KVCatalog) SetAttr(ctx context.Context, ino Ino, s SetAttr) (out Attr, err error) {
	err = b.update(ctx, func(w *kvTxn) error {
		a, err := w.inode(ino)
		if err != nil {
			return err
		}
		s.Apply(a, w.now)
		w.touch(a)
		out = *a
		return nil
	})
	if err != nil {
		return Attr{}, fmt.Errorf("setattr %d: %w", ino, err)
	}
	return out, nil
}

// Rename implements Catalog with rename(2) and renameat2(2) semantics.
func (b *KVCatalog) Rename(ctx context.Context, parent Ino, name string, newParent Ino, newName string, flags uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := checkEntryName(name)
	if err == nil {
		err = checkEntryName(newName)
	}
	if err == nil && (flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange) {
		err = fmt.Errorf("flags %#x: %w", flags, ErrInvalid)
	}
	if err == nil {
		err = b.update(ctx, func(w *kvTxn) error { return w.rename(parent, name, newParent, newName, flags) })
	}
	if err != nil {
		return fmt.Errorf("rename %d/%q to %d/%q: %w", parent, name, newParent, newName, err)
	}
	return nil
}

func (w *kvTxn) rename(parent Ino, name string, newParent Ino, newName string, flags uint32) error {
	sp, err := w.liveDir(parent)
	if err != nil {
		return err
	}
	dp, err := w.liveDir(newParent)
	if err != nil {
		return err
	}
	src, srcMode, ok, err := w.dirent(parent, name)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotExist
	}
	dst, dstMode, dstOK, err := w.dirent(newParent, newName)
	if err != nil {
		return err
	}
	switch {
	case flags&RenameExchange != 0 && !dstOK:
		return fmt.Errorf("exchange target: %w", ErrNotExist)
	case flags&RenameNoReplace != 0 && dstOK:
		return ErrExist
	case dstOK && dst == src:
		// The same entry, or two links to one file: rename(2) does nothing.
		return nil
	}
	srcDir, dstDir := srcMode&ModeType == ModeDir, dstMode&ModeType == ModeDir
	if srcDir {
		if err := w.checkNotBelow(newParent, src); err != nil {
			return err
		}
	}
	a, err := w.inode(src)
	if err != nil {
		return err
	}
	if flags&RenameExchange != 0 {
		if dstDir {
			if err := w.checkNotBelow(parent, dst); err != nil {
				return err
			}
		}
		d, err := w.inode(dst)
		if err != nil {
			return err
		}
		for _, e := range []error{
			w.delDirent(parent, name, src), w.delDirent(newParent, newName, dst),
			w.putDirent(parent, name, dst, dstMode), w.putDirent(newParent, newName, src, srcMode),
		} {
			if e != nil {
				return e
			}
		}
		if srcDir {
			sp.Nlink--
			dp.Nlink++
		}
		if dstDir {
			dp.Nlink--
			sp.Nlink++
		}
		d.Ctime = w.now
		w.touch(d)
	} else {
		if dstOK {
			switch {
			case srcDir && !dstDir:
				return fmt.Errorf("target is not a directory: %w", ErrNotDir)
			case !srcDir && dstDir:
				return fmt.Errorf("target is a directory: %w", ErrIsDir)
			case dstDir && w.hasChildren(dst):
				return fmt.Errorf("target: %w", ErrNotEmpty)
			}
			if err := w.unlink(dp, newName, dst); err != nil {
				return err
			}
		}
		if err := w.delDirent(parent, name, src); err != nil {
			return err
		}
		if err := w.putDirent(newParent, newName, src, srcMode); err != nil {
			return err
		}
		if srcDir {
			sp.Nlink--
			dp.Nlink++
		}
	}
	a.Ctime = w.now
	w.touch(a)
	w.changed(sp)
	w.changed(dp)
	return nil
}

// Remove implements Catalog.
func (b *KVCatalog) Remove(ctx context.Context, parent Ino, name string, dir bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := checkEntryName(name)
	if err == nil {
		err = b.update(ctx, func(w *kvTxn) error {
			p, err := w.liveDir(parent)
			if err != nil {
				return err
			}
			ino, mode, ok, err := w.dirent(parent, name)
			if err != nil {
				return err
			}
			switch isDir := mode&ModeType == ModeDir; {
			case !ok:
				return ErrNotExist
			case isDir && !dir:
				return ErrIsDir
			case !isDir && dir:
				return ErrNotDir
			case isDir && w.hasChildren(ino):
				return ErrNotEmpty
			}
			return w.unlink(p, name, ino)
		})
	}
	if err != nil {
		return fmt.Errorf("remove %d/%q: %w", parent, name, err)
	}
	return nil
}

// Commit implements Catalog.
func (b *KVCatalog) Commit(ctx context.Context, ino Ino, v Version) (out Version, err error) {
	if err := ctx.Err(); err != nil {
		return Version{}, err
	}
	return b.commit(ctx, ino, v, nil)
}

// commit is Commit, with check (if not nil) run first in the transaction.
func (b *KVCatalog) commit(ctx context.Context, ino Ino, v Version, check func(w *kvTxn) error) (out Version, err error) {
	if v.Recipe.IsZero() || v.Size < 0 || v.Holes < 0 || v.Holes > v.Size {
		return Version{}, fmt.Errorf("commit %d: version without recipe, or with size %d and holes %d: %w", ino, v.Size, v.Holes, ErrInvalid)
	}
	in := v
	err = b.update(ctx, func(w *kvTxn) error {
		v := in // a KV may run this again
		if check != nil {
			if err := check(w); err != nil {
				return err
			}
		}
		a, err := w.inode(ino)
		if err != nil {
			return err
		}
		if !a.IsRegular() {
			return fmt.Errorf("mode %#o is not a regular file: %w", a.Mode, ErrInvalid)
		}
		if v.ID, err = w.newVersionID(); err != nil {
			return err
		}
		if v.Mtime.IsZero() {
			v.Mtime = w.now
		}
		if err := w.versions.Put(versionKey(ino, v.ID), encodeVersion(&v)); err != nil {
			return err
		}
		a.Head, a.Recipe, a.Size, a.Holes, a.Mtime, a.Ctime = v.ID, v.Recipe, v.Size, v.Holes, v.Mtime, w.now
		w.touch(a)
		out = v
		return nil
	})
	if err != nil {
		return Version{}, fmt.Errorf("commit %d: %w", ino, err)
	}
	return out, nil
}

// ErrFenced is returned by CommitFenced when a garbage collection started
// after the commit's chunks were last touched, less the margin.
var ErrFenced = errors.New("a garbage collection started since the commit's chunks were touched")

// GCFencer is a Catalog that lets garbage collection of a shared store and
// commits on other machines agree through the catalog itself, whatever the
// delay between a commit's last touch of its chunks and its version entry:
//
//   - gc calls FenceGC(start) before it marks, and then deletes only
//     chunks idle since start-margin;
//   - a commit calls CommitFenced with the time its chunks were touched
//     (at the latest when it began touching them), which writes the
//     version only if no fence later than touched+margin was set.
//
// Both are catalog transactions, so one comes first: a commit before the
// fence is seen by the mark; a commit after it has touched its chunks after
// start-margin, so they survive as idle-since tests them.
type GCFencer interface {
	FenceGC(ctx context.Context, start time.Time) error
	CommitFenced(ctx context.Context, ino Ino, v Version, touched time.Time, margin time.Duration) (Version, error)
}

var _ GCFencer = (*KVCatalog)(nil)

// FenceGC implements GCFencer: the fence only moves forward.
func (b *KVCatalog) FenceGC(ctx context.Context, start time.Time) error {
	err := b.update(ctx, func(w *kvTxn) error {
		if v := w.meta.Get(metaGCFence); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= start.UnixNano() {
			return nil
		}
		return w.meta.Put(metaGCFence, beUint64(uint64(start.UnixNano())))
	})
	if err != nil {
		return fmt.Errorf("record gc start: %w", err)
	}
	return nil
}

// CommitFenced implements GCFencer.
func (b *KVCatalog) CommitFenced(ctx context.Context, ino Ino, v Version, touched time.Time, margin time.Duration) (Version, error) {
	return b.commit(ctx, ino, v, func(w *kvTxn) error {
		if f := w.meta.Get(metaGCFence); len(f) == 8 {
			if fence := time.Unix(0, int64(binary.BigEndian.Uint64(f))); touched.Before(fence.Add(-margin)) {
				return fmt.Errorf("%w (gc at %s, chunks touched at %s, margin %v)", ErrFenced,
					fence.UTC().Format(time.RFC3339Nano), touched.UTC().Format(time.RFC3339Nano), margin)
			}
		}
		return nil
	})
}

// Versions implements Catalog.
func (b *KVCatalog) Versions(ctx context.Context, ino Ino) (vs []Version, err error) {
	err = b.view(ctx, func(tx KVTx) error {
		vs = nil // a KV may run this again
		if tx.Bucket(bktInodes).Get(inoKey(ino)) == nil {
			return ErrNotExist
		}
		prefix := inoKey(ino)
		return tx.Bucket(bktVersions).Scan(prefix, nil, func(k, val []byte) error {
			_, v, err := decodeVersion(k, val)
			if err != nil {
				return err
			}
			vs = append(vs, v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("versions of %d: %w", ino, err)
	}
	return vs, nil
}

// RemoveVersion implements Catalog. When HEAD goes, the newest remaining
// version becomes HEAD and gives the file its size and mtime back.
func (b *KVCatalog) RemoveVersion(ctx context.Context, ino Ino, id VersionID) error {
	err := b.update(ctx, func(w *kvTxn) error {
		a, err := w.inode(ino)
		if err != nil {
			return err
		}
		k := versionKey(ino, id)
		if w.versions.Get(k) == nil {
			return fmt.Errorf("version %s: %w", id, ErrNotExist)
		}
		if err := w.versions.Delete(k); err != nil {
			return err
		}
		a.Ctime = w.now
		w.touch(a)
		if a.Head != id {
			return nil
		}
		// The newest remaining version: keys ascend, so the last one seen.
		// (A forward scan, which every KV has; removing a version is rare.)
		var lk, lv []byte
		if err := w.versions.Scan(inoKey(ino), nil, func(k, v []byte) error {
			lk, lv = bytes.Clone(k), bytes.Clone(v)
			return nil
		}); err != nil {
			return err
		}
		if lk != nil {
			_, prev, err := decodeVersion(lk, lv)
			if err != nil {
				return err
			}
			a.Head, a.Recipe, a.Size, a.Holes, a.Mtime = prev.ID, prev.Recipe, prev.Size, prev.Holes, prev.Mtime
			return nil
		}
		a.Head, a.Recipe, a.Size, a.Holes, a.Mtime = VersionID{}, chunkstore.ID{}, 0, 0, w.now
		if a.Nlink > 0 {
			return nil
		}
		parent, err := w.unlistDeleted(ino)
		if err != nil {
			return err
		}
		if err := w.dropInode(ino); err != nil {
			return err
		}
		return w.dropEmptyDeleted(parent)
	})
	if err != nil {
		return fmt.Errorf("remove version %d@%s: %w", ino, id, err)
	}
	return nil
}

// Deleted implements Catalog: dir's deleted entries in the order they were
// deleted, newest last. A name deleted several times appears several times.
func (b *KVCatalog) Deleted(ctx context.Context, dir Ino) (out []Deleted, err error) {
	type entry struct {
		Deleted
		seq uint64
	}
	var ents []entry
	err = b.view(ctx, func(tx KVTx) error {
		ents = nil // a KV may run this again
		d, err := getInode(tx, dir)
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return ErrNotDir
		}
		prefix := inoKey(dir)
		return tx.Bucket(bktDeleted).Scan(prefix, nil, func(k, v []byte) error {
			_, name, at, ino, err := parseDeletedKey(k)
			if err != nil {
				return err
			}
			if len(v) != 12 {
				return fmt.Errorf("catalog corrupt: bad deleted value %x", v)
			}
			ents = append(ents, entry{
				Deleted: Deleted{Name: name, Ino: ino, Mode: binary.BigEndian.Uint32(v), Deleted: at},
				seq:     binary.BigEndian.Uint64(v[4:]),
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("deleted in %d: %w", dir, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].seq < ents[j].seq })
	out = make([]Deleted, len(ents))
	for i := range ents {
		out[i] = ents[i].Deleted
	}
	return out, nil
}

// Purge implements Catalog. A removed directory left without deleted
// entries by the purge goes too.
func (b *KVCatalog) Purge(ctx context.Context, ino Ino) error {
	err := b.update(ctx, func(w *kvTxn) error {
		if ino == RootIno {
			return fmt.Errorf("the root: %w", ErrInvalid)
		}
		if _, err := w.inode(ino); err != nil {
			return err
		}
		var parent Ino
		if k := w.dindex.Get(inoKey(ino)); k != nil {
			parent = keyIno(k)
		}
		if err := w.purge(ino); err != nil {
			return err
		}
		return w.dropEmptyDeleted(parent)
	})
	if err != nil {
		return fmt.Errorf("purge %d: %w", ino, err)
	}
	return nil
}

// walkBatch is how many versions Walk reads per transaction. fn runs
// outside transactions, so a slow fn (or one that calls the catalog) never
// holds a read transaction open.
const walkBatch = 1024

// errBatchFull stops Walk's scan when a batch is full.
var errBatchFull = errors.New("batch full")

// Walk implements Catalog. It reads in batches, so versions committed or
// removed while it runs may or may not be seen.
func (b *KVCatalog) Walk(ctx context.Context, fn func(ino Ino, v Version) error) error {
	type item struct {
		ino Ino
		v   Version
	}
	var after []byte
	for {
		var batch []item
		var next []byte
		err := b.view(ctx, func(tx KVTx) error {
			batch, next = batch[:0], after // a KV may run fn again
			err := tx.Bucket(bktVersions).Scan(nil, after, func(k, val []byte) error {
				if len(batch) == walkBatch {
					return errBatchFull
				}
				ino, v, err := decodeVersion(k, val)
				if err != nil {
					return err
				}
				batch = append(batch, item{ino, v})
				next = bytes.Clone(k)
				return nil
			})
			if errors.Is(err, errBatchFull) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("walk: %w", err)
		}
		after = next
		for _, it := range batch {
			if err := fn(it.ino, it.v); err != nil {
				return err
			}
		}
		if len(batch) < walkBatch {
			return nil
		}
	}
}

func checkXattrName(name string) error {
	if name == "" || len(name) > maxXattrNameLen {
		return fmt.Errorf("xattr name of %d bytes (1 to %d): %w", len(name), maxXattrNameLen, ErrInvalid)
	}
	return nil
}

// GetXattr implements Catalog.
func (b *KVCatalog) GetXattr(ctx context.Context, ino Ino, name string) (val []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkXattrName(name); err != nil {
		return nil, fmt.Errorf("getxattr %d: %w", ino, err)
	}
	err = b.view(ctx, func(tx KVTx) error {
		v := tx.Bucket(bktXattrs).Get(inoNameKey(ino, name))
		if v == nil {
			if tx.Bucket(bktInodes).Get(inoKey(ino)) == nil {
				return ErrNotExist
			}
			return ErrNoAttr
		}
		val = bytes.Clone(v)
		if val == nil {
			val = []byte{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("getxattr %d %q: %w", ino, name, err)
	}
	return val, nil
}

// SetXattr implements Catalog.
func (b *KVCatalog) SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := checkXattrName(name)
	switch {
	case err != nil:
	case len(value) > maxXattrValueLen:
		err = fmt.Errorf("value of %d bytes (at most %d): %w", len(value), maxXattrValueLen, ErrInvalid)
	case flags&^(XattrCreate|XattrReplace) != 0 || flags == XattrCreate|XattrReplace:
		err = fmt.Errorf("flags %#x: %w", flags, ErrInvalid)
	default:
		err = b.update(ctx, func(w *kvTxn) error {
			a, err := w.inode(ino)
			if err != nil {
				return err
			}
			k := inoNameKey(ino, name)
			exists := w.xattrs.Get(k) != nil
			if flags == XattrCreate && exists {
				return ErrExist
			}
			if flags == XattrReplace && !exists {
				return ErrNoAttr
			}
			if err := w.xattrs.Put(k, bytes.Clone(value)); err != nil {
				return err
			}
			a.Ctime = w.now
			w.touch(a)
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("setxattr %d %q: %w", ino, name, err)
	}
	return nil
}

// ListXattr implements Catalog; names come in byte order.
func (b *KVCatalog) ListXattr(ctx context.Context, ino Ino) (names []string, err error) {
	err = b.view(ctx, func(tx KVTx) error {
		names = nil // a KV may run this again
		if tx.Bucket(bktInodes).Get(inoKey(ino)) == nil {
			return ErrNotExist
		}
		prefix := inoKey(ino)
		return tx.Bucket(bktXattrs).Scan(prefix, nil, func(k, _ []byte) error {
			names = append(names, string(k[8:]))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listxattr %d: %w", ino, err)
	}
	return names, nil
}

// RemoveXattr implements Catalog.
func (b *KVCatalog) RemoveXattr(ctx context.Context, ino Ino, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := checkXattrName(name)
	if err == nil {
		err = b.update(ctx, func(w *kvTxn) error {
			a, err := w.inode(ino)
			if err != nil {
				return err
			}
			k := inoNameKey(ino, name)
			if w.xattrs.Get(k) == nil {
				return ErrNoAttr
			}
			if err := w.xattrs.Delete(k); err != nil {
				return err
			}
			a.Ctime = w.now
			w.touch(a)
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("removexattr %d %q: %w", ino, name, err)
	}
	return nil
}
