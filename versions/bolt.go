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

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

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

// boltSchema is the layout version written to meta/schema. A database with a
// newer or unknown schema is refused rather than misread.
const boltSchema = 1

// Limits a catalog enforces, as Linux does.
const (
	maxNameLen       = 255
	maxXattrNameLen  = 255
	maxXattrValueLen = 64 << 10
)

// BoltOptions configures OpenBolt. The zero value is ready to use.
type BoltOptions struct {
	// Now is the catalog's clock (times, version IDs); time.Now if nil.
	Now func() time.Time
	// ReadOnly opens an existing database without writing to it; changes
	// fail with ErrReadOnly.
	ReadOnly bool
	// Timeout bounds the wait for bolt's file lock (1s if zero). The store
	// lock is taken before the catalog is opened; this is a second guard, so
	// a long wait means something is wrong and is not worth sitting out.
	Timeout time.Duration
}

// Bolt is a Catalog in a bbolt database file. Each method is one bolt
// transaction: reads run concurrently on a snapshot, writes are serialized
// and fsynced before they return.
type Bolt struct {
	db  *bolt.DB
	now func() time.Time
	ro  bool
}

var _ Catalog = (*Bolt)(nil)

// OpenBolt opens or creates the catalog database at path. A new database
// gets the root directory (RootIno, 0755, owned by the calling user).
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.Timeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open catalog %s: %w (no lock after %v; is another casfs running on this store?): %w",
			path, ErrInUse, opts.Timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	b := &Bolt{db: db, now: opts.Now, ro: opts.ReadOnly}
	if opts.ReadOnly {
		err = db.View(b.checkSchema)
	} else {
		err = db.Update(b.init)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return b, nil
}

func (b *Bolt) checkSchema(tx *bolt.Tx) error {
	m := tx.Bucket(bktMeta)
	if m == nil {
		return errors.New("not a casfs catalog (no meta bucket)")
	}
	v := m.Get(metaSchema)
	if len(v) != 4 {
		return fmt.Errorf("not a casfs catalog (bad schema key %x)", v)
	}
	if s := binary.BigEndian.Uint32(v); s != boltSchema {
		if s > boltSchema {
			return fmt.Errorf("catalog schema %d is newer than this casfs supports (%d); upgrade casfs", s, boltSchema)
		}
		return fmt.Errorf("unknown catalog schema %d (this casfs supports %d)", s, boltSchema)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("catalog corrupt: bucket %s missing", name)
		}
	}
	return nil
}

// init creates the buckets and the root directory of a new database, or
// checks the schema of an existing one.
func (b *Bolt) init(tx *bolt.Tx) error {
	if tx.Bucket(bktMeta) != nil {
		return b.checkSchema(tx)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	m := tx.Bucket(bktMeta)
	schema := make([]byte, 4)
	binary.BigEndian.PutUint32(schema, boltSchema)
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
func (b *Bolt) Close() error { return b.db.Close() }

// view runs fn in a read transaction.
func (b *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(fn)
}

// update runs fn in a write transaction and writes back the inodes it
// changed.
func (b *Bolt) update(ctx context.Context, fn func(w *boltTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.ro {
		return ErrReadOnly
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		// Round(0) drops the monotonic reading: stored times are wall
		// times, and returned ones should compare like stored ones.
		w, err := newBoltTx(tx, b.now().Round(0))
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

func boltGetInode(tx *bolt.Tx, ino Ino) (Attr, error) {
	v := tx.Bucket(bktInodes).Get(inoKey(ino))
	if v == nil {
		return Attr{}, fmt.Errorf("inode %d: %w", ino, ErrNotExist)
	}
	return decodeInode(ino, v)
}

// GetAttr returns ino's attributes, also for a deleted inode.
func (b *Bolt) GetAttr(ctx context.Context, ino Ino) (a Attr, err error) {
	err = b.view(ctx, func(tx *bolt.Tx) error {
		a, err = boltGetInode(tx, ino)
		return err
	})
	if err != nil {
		return Attr{}, fmt.Errorf("getattr: %w", err)
	}
	return a, nil
}

// Lookup returns the attributes of parent/name.
func (b *Bolt) Lookup(ctx context.Context, parent Ino, name string) (a Attr, err error) {
	if err := ctx.Err(); err != nil {
		return Attr{}, err
	}
	if err := checkEntryName(name); err != nil {
		return Attr{}, fmt.Errorf("lookup %d: %w", parent, err)
	}
	err = b.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bktDirents).Get(inoNameKey(parent, name))
		if v == nil {
			p, err := boltGetInode(tx, parent)
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
		if a, err = boltGetInode(tx, ino); errors.Is(err, ErrNotExist) {
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
func (b *Bolt) ReadDir(ctx context.Context, dir Ino) (ents []Dirent, err error) {
	err = b.view(ctx, func(tx *bolt.Tx) error {
		d, err := boltGetInode(tx, dir)
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
		c := tx.Bucket(bktDirents).Cursor()
		for k, v := c.Seek(prefix); keyHasPrefix(k, prefix); k, v = c.Next() {
			ino, mode, err := parseDirentVal(v)
			if err != nil {
				return err
			}
			buf = append(buf, k[8:]...)
			ends = append(ends, len(buf))
			ents = append(ents, Dirent{Ino: ino, Mode: mode})
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
func (b *Bolt) Create(ctx context.Context, parent Ino, name string, a Attr) (out Attr, err error) {
	if err := ctx.Err(); err != nil {
		return Attr{}, err
	}
	if err := checkEntryName(name); err != nil {
		return Attr{}, fmt.Errorf("create in %d: %w", parent, err)
	}
	err = b.update(ctx, func(w *boltTx) error {
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
func (b *Bolt) Link(ctx context.Context, ino Ino, parent Ino, name string) (out Attr, err error) {
	if err := ctx.Err(); err != nil {
		return Attr{}, err
	}
	if err := checkEntryName(name); err != nil {
		return Attr{}, fmt.Errorf("link %d into %d: %w", ino, parent, err)
	}
	err = b.update(ctx, func(w *boltTx) error {
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
func (b *Bolt) SetAttr(ctx context.Context, ino Ino, s SetAttr) (out Attr, err error) {
	err = b.update(ctx, func(w *boltTx) error {
		a, err := w.inode(ino)
		if err != nil {
			return err
		}
		if s.Mode != nil {
			a.Mode = a.Mode&ModeType | *s.Mode&ModePerm
		}
		if s.Uid != nil {
			a.Uid = *s.Uid
		}
		if s.Gid != nil {
			a.Gid = *s.Gid
		}
		if s.Atime != nil {
			a.Atime = *s.Atime
		}
		if s.Mtime != nil {
			a.Mtime = *s.Mtime
		}
		a.Ctime = w.now
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
func (b *Bolt) Rename(ctx context.Context, parent Ino, name string, newParent Ino, newName string, flags uint32) error {
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
		err = b.update(ctx, func(w *boltTx) error { return w.rename(parent, name, newParent, newName, flags) })
	}
	if err != nil {
		return fmt.Errorf("rename %d/%q to %d/%q: %w", parent, name, newParent, newName, err)
	}
	return nil
}

func (w *boltTx) rename(parent Ino, name string, newParent Ino, newName string, flags uint32) error {
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
func (b *Bolt) Remove(ctx context.Context, parent Ino, name string, dir bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := checkEntryName(name)
	if err == nil {
		err = b.update(ctx, func(w *boltTx) error {
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
func (b *Bolt) Commit(ctx context.Context, ino Ino, v Version) (out Version, err error) {
	if err := ctx.Err(); err != nil {
		return Version{}, err
	}
	if v.Recipe.IsZero() || v.Size < 0 {
		return Version{}, fmt.Errorf("commit %d: version without recipe or with size %d: %w", ino, v.Size, ErrInvalid)
	}
	err = b.update(ctx, func(w *boltTx) error {
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
		a.Head, a.Recipe, a.Size, a.Mtime, a.Ctime = v.ID, v.Recipe, v.Size, v.Mtime, w.now
		w.touch(a)
		out = v
		return nil
	})
	if err != nil {
		return Version{}, fmt.Errorf("commit %d: %w", ino, err)
	}
	return out, nil
}

// Versions implements Catalog.
func (b *Bolt) Versions(ctx context.Context, ino Ino) (vs []Version, err error) {
	err = b.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bktInodes).Get(inoKey(ino)) == nil {
			return ErrNotExist
		}
		prefix := inoKey(ino)
		c := tx.Bucket(bktVersions).Cursor()
		for k, val := c.Seek(prefix); keyHasPrefix(k, prefix); k, val = c.Next() {
			_, v, err := decodeVersion(k, val)
			if err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("versions of %d: %w", ino, err)
	}
	return vs, nil
}

// RemoveVersion implements Catalog. When HEAD goes, the newest remaining
// version becomes HEAD and gives the file its size and mtime back.
func (b *Bolt) RemoveVersion(ctx context.Context, ino Ino, id VersionID) error {
	err := b.update(ctx, func(w *boltTx) error {
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
		prefix := inoKey(ino)
		c := w.versions.Cursor()
		lk, lv := c.Seek(inoKey(ino + 1))
		if lk == nil {
			lk, lv = c.Last()
		} else {
			lk, lv = c.Prev()
		}
		if keyHasPrefix(lk, prefix) {
			_, prev, err := decodeVersion(lk, lv)
			if err != nil {
				return err
			}
			a.Head, a.Recipe, a.Size, a.Mtime = prev.ID, prev.Recipe, prev.Size, prev.Mtime
			return nil
		}
		a.Head, a.Recipe, a.Size, a.Mtime = VersionID{}, chunkstore.ID{}, 0, w.now
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
func (b *Bolt) Deleted(ctx context.Context, dir Ino) (out []Deleted, err error) {
	type entry struct {
		Deleted
		seq uint64
	}
	var ents []entry
	err = b.view(ctx, func(tx *bolt.Tx) error {
		d, err := boltGetInode(tx, dir)
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return ErrNotDir
		}
		prefix := inoKey(dir)
		c := tx.Bucket(bktDeleted).Cursor()
		for k, v := c.Seek(prefix); keyHasPrefix(k, prefix); k, v = c.Next() {
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
		}
		return nil
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
func (b *Bolt) Purge(ctx context.Context, ino Ino) error {
	err := b.update(ctx, func(w *boltTx) error {
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

// Walk implements Catalog. It reads in batches, so versions committed or
// removed while it runs may or may not be seen.
func (b *Bolt) Walk(ctx context.Context, fn func(ino Ino, v Version) error) error {
	type item struct {
		ino Ino
		v   Version
	}
	var after []byte
	for {
		var batch []item
		err := b.view(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(bktVersions).Cursor()
			k, val := c.First()
			if after != nil {
				if k, val = c.Seek(after); bytes.Equal(k, after) {
					k, val = c.Next()
				}
			}
			for ; k != nil && len(batch) < walkBatch; k, val = c.Next() {
				ino, v, err := decodeVersion(k, val)
				if err != nil {
					return err
				}
				batch = append(batch, item{ino, v})
				after = bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("walk: %w", err)
		}
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
func (b *Bolt) GetXattr(ctx context.Context, ino Ino, name string) (val []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkXattrName(name); err != nil {
		return nil, fmt.Errorf("getxattr %d: %w", ino, err)
	}
	err = b.view(ctx, func(tx *bolt.Tx) error {
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
func (b *Bolt) SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags int) error {
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
		err = b.update(ctx, func(w *boltTx) error {
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
func (b *Bolt) ListXattr(ctx context.Context, ino Ino) (names []string, err error) {
	err = b.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bktInodes).Get(inoKey(ino)) == nil {
			return ErrNotExist
		}
		prefix := inoKey(ino)
		c := tx.Bucket(bktXattrs).Cursor()
		for k, _ := c.Seek(prefix); keyHasPrefix(k, prefix); k, _ = c.Next() {
			names = append(names, string(k[8:]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listxattr %d: %w", ino, err)
	}
	return names, nil
}

// RemoveXattr implements Catalog.
func (b *Bolt) RemoveXattr(ctx context.Context, ino Ino, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := checkXattrName(name)
	if err == nil {
		err = b.update(ctx, func(w *boltTx) error {
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
