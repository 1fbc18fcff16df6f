package versions

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Check cross-checks every bucket of the catalog: dirents against
// their back links, link counts against names and subdirectories, deleted
// entries against the index, HEAD against the newest version, and that
// nothing is left behind for an inode that is gone. The tests run it after
// every conformance test, so any operation that leaves the database
// inconsistent fails there even when the interface looks right.
func (c *KVCatalog) Check(ctx context.Context) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	err := c.db.View(ctx, func(tx KVTx) error {
		errs = errs[:0] // a KV may run fn again
		inodes := map[Ino]Attr{}
		var maxIno Ino
		err := tx.Bucket(bktInodes).Scan(nil, nil, func(k, v []byte) error {
			a, err := decodeInode(keyIno(k), v)
			if err != nil {
				return err
			}
			inodes[a.Ino] = a
			maxIno = max(maxIno, a.Ino)
			return nil
		})
		if err != nil {
			return err
		}
		meta := tx.Bucket(bktMeta)
		if next := binary.BigEndian.Uint64(meta.Get(metaNextIno)); Ino(next) < maxIno {
			bad("next inode %d below inode %d", next, maxIno)
		}

		names := map[Ino]int{}
		subdirs := map[Ino]uint32{}
		dirents, backlinks := tx.Bucket(bktDirents), tx.Bucket(bktNames)
		dirents.Scan(nil, nil, func(k, v []byte) error {
			parent, name := keyIno(k), string(k[8:])
			ino, mode, err := parseDirentVal(v)
			if err != nil {
				return err
			}
			p, ok := inodes[parent]
			if !ok || !p.IsDir() || p.Nlink == 0 {
				bad("entry %d/%q in a missing or removed directory", parent, name)
			}
			a, ok := inodes[ino]
			if !ok {
				bad("entry %d/%q names missing inode %d", parent, name, ino)
			} else if a.Mode&ModeType != mode {
				bad("entry %d/%q type %#o, inode %#o", parent, name, mode, a.Mode)
			}
			if backlinks.Get(backlinkKey(ino, parent, name)) == nil {
				bad("entry %d/%q has no back link", parent, name)
			}
			names[ino]++
			if mode == ModeDir {
				subdirs[parent]++
			}
			return nil
		})
		backlinks.Scan(nil, nil, func(k, _ []byte) error {
			ino, parent, name := keyIno(k), keyIno(k[8:]), string(k[16:])
			if v := dirents.Get(inoNameKey(parent, name)); v == nil || keyIno(v) != ino {
				bad("back link %d → %d/%q without its entry", ino, parent, name)
			}
			return nil
		})

		listed := map[Ino]int{}
		hasDeleted := map[Ino]bool{}
		dindex := tx.Bucket(bktDIndex)
		tx.Bucket(bktDeleted).Scan(nil, nil, func(k, v []byte) error {
			parent, name, _, ino, err := parseDeletedKey(k)
			if err != nil {
				return err
			}
			if p, ok := inodes[parent]; !ok || !p.IsDir() {
				bad("deleted %d/%q in a missing directory", parent, name)
			}
			if a, ok := inodes[ino]; !ok || a.Nlink != 0 || a.Mode != binary.BigEndian.Uint32(v) {
				bad("deleted %d/%q: inode %d missing, live or of another mode", parent, name, ino)
			}
			if !bytes.Equal(dindex.Get(inoKey(ino)), k) {
				bad("deleted %d/%q not indexed", parent, name)
			}
			listed[ino]++
			hasDeleted[parent] = true
			return nil
		})
		deleted := tx.Bucket(bktDeleted)
		dindex.Scan(nil, nil, func(k, v []byte) error {
			if deleted.Get(v) == nil {
				bad("index of deleted inode %d points nowhere", keyIno(k))
			}
			return nil
		})

		newest := map[Ino]Version{}
		var lastVer int64
		if v := meta.Get(metaLastVer); v != nil {
			lastVer = int64(binary.BigEndian.Uint64(v))
		}
		tx.Bucket(bktVersions).Scan(nil, nil, func(k, v []byte) error {
			ino, ver, err := decodeVersion(k, v)
			if err != nil {
				return err
			}
			if a, ok := inodes[ino]; !ok || !a.IsRegular() {
				bad("version %v of missing or non-regular inode %d", ver.ID, ino)
			}
			if ver.ID.Nanos > lastVer {
				bad("version %v after the last handed out", ver.ID)
			}
			newest[ino] = ver // keys ascend
			return nil
		})
		tx.Bucket(bktXattrs).Scan(nil, nil, func(k, _ []byte) error {
			if _, ok := inodes[keyIno(k)]; !ok {
				bad("xattr %q of missing inode %d", k[8:], keyIno(k))
			}
			return nil
		})

		for ino, a := range inodes {
			switch {
			case ino == RootIno:
				if a.Nlink != 2+subdirs[ino] || names[ino] != 0 || listed[ino] != 0 {
					bad("root: nlink %d, %d subdirs, %d names", a.Nlink, subdirs[ino], names[ino])
				}
			case a.IsDir() && a.Nlink != 0:
				if names[ino] != 1 || a.Nlink != 2+subdirs[ino] || listed[ino] != 0 {
					bad("dir %d: nlink %d, %d subdirs, %d names, listed %d", ino, a.Nlink, subdirs[ino], names[ino], listed[ino])
				}
			case a.IsDir():
				if names[ino] != 0 || listed[ino] != 1 || !hasDeleted[ino] {
					bad("removed dir %d: %d names, listed %d, has deleted %v", ino, names[ino], listed[ino], hasDeleted[ino])
				}
			default:
				if int(a.Nlink) != names[ino] {
					bad("inode %d: nlink %d, %d names", ino, a.Nlink, names[ino])
				}
				_, hasVersions := newest[ino]
				if a.Nlink == 0 && (listed[ino] != 1 || !hasVersions) {
					bad("deleted inode %d: listed %d, has versions %v", ino, listed[ino], hasVersions)
				}
				if a.Nlink != 0 && listed[ino] != 0 {
					bad("live inode %d in a deleted list", ino)
				}
			}
			if a.IsRegular() {
				v := newest[ino]
				if a.Head != v.ID || a.Recipe != v.Recipe || (!v.ID.IsZero() && (a.Size != v.Size || a.Holes != v.Holes)) || (v.ID.IsZero() && a.Size != 0) {
					bad("inode %d: head %v/%s size %d holes %d, newest version %+v", ino, a.Head, a.Recipe.Str(), a.Size, a.Holes, v)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checking the catalog: %w", err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n%w", ErrInconsistent, errors.Join(errs...))
	}
	return nil
}

// ErrInconsistent is matched by Check's error when the catalog's buckets
// contradict each other (rather than the check failing to read them).
var ErrInconsistent = errors.New("catalog inconsistent")
