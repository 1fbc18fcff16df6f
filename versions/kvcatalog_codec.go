package versions

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// On-disk encodings of the bolt catalog. Everything is fixed-width big-endian
// so that keys sort as numbers and an inode decodes with a handful of loads:
// GetAttr and Lookup are on the hot path of every stat under FUSE.
//
// Layout (schema 2; schema 1 lacks the holes fields, read as 0):
//
//	meta      "schema"                    → u32 schema version
//	          "nextino"                   → u64 next inode number
//	          "lastver"                   → i64 nanos of the newest VersionID
//	          "delseq"                    → u64 last deletion sequence
//	          "gcfence"                   → i64 nanos: start of the latest gc
//	                                        of a shared store (GCFencer)
//	inodes    ino                         → inode record (below)
//	dirents   parent ino | name           → child ino u64 | mode u32
//	names     ino | parent ino | name     → empty (back links of dirents)
//	deleted   parent ino | name | 0x00 | deleted nanos u64 | ino
//	                                      → mode u32 | deletion seq u64
//	dindex    ino                         → its key in deleted
//	versions  ino | VersionID.Bytes()     → recipe [32] | size i64 | mtime
//	                                        | holes i64
//	xattrs    ino | name                  → value
//
// An inode record is a format byte (2), mode, uid, gid, nlink (u32 each),
// size (i64), atime, mtime, ctime (i64 seconds | u32 nanoseconds each), the
// HEAD VersionID (12 bytes), the recipe ID (32 bytes), HEAD's holes (i64)
// and, to the end, a symlink's target. Format 1, which schema 1 wrote, has
// no holes field. Times are stored as seconds and nanoseconds rather than
// Unix nanoseconds so that any time.Time a user sets (touch -d 1600-01-01)
// survives.

const (
	inodeFormat  = 2
	inodeFixed1  = 1 + 4*4 + 8 + 3*12 + 12 + chunkstore.IDSize
	inodeFixed   = inodeFixed1 + 8
	timeSize     = 12
	verValSize1  = chunkstore.IDSize + 8 + timeSize
	verValSize   = verValSize1 + 8
	inodeFormat1 = 1
)

func inoKey(ino Ino) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(ino))
	return k
}

func keyIno(k []byte) Ino { return Ino(binary.BigEndian.Uint64(k)) }

// inoNameKey is ino | name, the key of dirents and xattrs.
func inoNameKey(ino Ino, name string) []byte {
	k := make([]byte, 8+len(name))
	binary.BigEndian.PutUint64(k, uint64(ino))
	copy(k[8:], name)
	return k
}

// backlinkKey is ino | parent | name, the key of names.
func backlinkKey(ino, parent Ino, name string) []byte {
	k := make([]byte, 16+len(name))
	binary.BigEndian.PutUint64(k, uint64(ino))
	binary.BigEndian.PutUint64(k[8:], uint64(parent))
	copy(k[16:], name)
	return k
}

// deletedKey is parent | name | 0x00 | deleted nanos | ino. Names never hold
// a NUL, so parent | name | 0x00 is the prefix of every deletion of one name.
func deletedKey(parent Ino, name string, at time.Time, ino Ino) []byte {
	k := make([]byte, 8+len(name)+1+16)
	binary.BigEndian.PutUint64(k, uint64(parent))
	n := 8 + copy(k[8:], name)
	k[n] = 0
	binary.BigEndian.PutUint64(k[n+1:], uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(k[n+9:], uint64(ino))
	return k
}

// parseDeletedKey splits a deleted key into its parts.
func parseDeletedKey(k []byte) (parent Ino, name string, at time.Time, ino Ino, err error) {
	if len(k) < 8+1+16 || k[len(k)-17] != 0 {
		return 0, "", time.Time{}, 0, fmt.Errorf("catalog corrupt: bad deleted key %x", k)
	}
	at = time.Unix(0, int64(binary.BigEndian.Uint64(k[len(k)-16:])))
	return keyIno(k), string(k[8 : len(k)-17]), at, keyIno(k[len(k)-8:]), nil
}

func versionKey(ino Ino, id VersionID) []byte {
	k := make([]byte, 8+12)
	binary.BigEndian.PutUint64(k, uint64(ino))
	binary.BigEndian.PutUint64(k[8:], uint64(id.Nanos))
	binary.BigEndian.PutUint32(k[16:], id.Seq)
	return k
}

func putTimeBE(b []byte, t time.Time) {
	binary.BigEndian.PutUint64(b, uint64(t.Unix()))
	binary.BigEndian.PutUint32(b[8:], uint32(t.Nanosecond()))
}

func getTimeBE(b []byte) time.Time {
	return time.Unix(int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint32(b[8:])))
}

func encodeInode(a *Attr) []byte {
	b := make([]byte, inodeFixed+len(a.Target))
	b[0] = inodeFormat
	binary.BigEndian.PutUint32(b[1:], a.Mode)
	binary.BigEndian.PutUint32(b[5:], a.Uid)
	binary.BigEndian.PutUint32(b[9:], a.Gid)
	binary.BigEndian.PutUint32(b[13:], a.Nlink)
	size := a.Size
	if a.IsDevice() {
		size = int64(a.Rdev) // a device has no size: its slot holds rdev
	}
	binary.BigEndian.PutUint64(b[17:], uint64(size))
	putTimeBE(b[25:], a.Atime)
	putTimeBE(b[37:], a.Mtime)
	putTimeBE(b[49:], a.Ctime)
	binary.BigEndian.PutUint64(b[61:], uint64(a.Head.Nanos))
	binary.BigEndian.PutUint32(b[69:], a.Head.Seq)
	copy(b[73:], a.Recipe[:])
	binary.BigEndian.PutUint64(b[inodeFixed1:], uint64(a.Holes))
	copy(b[inodeFixed:], a.Target)
	return b
}

// decodeInode decodes a record. It copies what it keeps: b belongs to bolt
// and is only valid within the transaction.
func decodeInode(ino Ino, b []byte) (Attr, error) {
	fixed := inodeFixed
	if len(b) > 0 && b[0] == inodeFormat1 {
		fixed = inodeFixed1
	}
	if len(b) < fixed || (b[0] != inodeFormat && b[0] != inodeFormat1) {
		return Attr{}, fmt.Errorf("catalog corrupt: inode %d: bad record (%d bytes)", ino, len(b))
	}
	a := Attr{
		Ino:   ino,
		Mode:  binary.BigEndian.Uint32(b[1:]),
		Uid:   binary.BigEndian.Uint32(b[5:]),
		Gid:   binary.BigEndian.Uint32(b[9:]),
		Nlink: binary.BigEndian.Uint32(b[13:]),
		Size:  int64(binary.BigEndian.Uint64(b[17:])),
		Atime: getTimeBE(b[25:]),
		Mtime: getTimeBE(b[37:]),
		Ctime: getTimeBE(b[49:]),
		Head:  VersionID{Nanos: int64(binary.BigEndian.Uint64(b[61:])), Seq: binary.BigEndian.Uint32(b[69:])},
	}
	copy(a.Recipe[:], b[73:])
	if fixed == inodeFixed {
		a.Holes = int64(binary.BigEndian.Uint64(b[inodeFixed1:]))
	}
	if a.IsDevice() {
		a.Rdev, a.Size = uint32(a.Size), 0
	}
	if len(b) > fixed {
		a.Target = string(b[fixed:])
	}
	return a, nil
}

// direntVal is child ino | mode.
func direntVal(ino Ino, mode uint32) []byte {
	v := make([]byte, 12)
	binary.BigEndian.PutUint64(v, uint64(ino))
	binary.BigEndian.PutUint32(v[8:], mode)
	return v
}

func parseDirentVal(v []byte) (Ino, uint32, error) {
	if len(v) != 12 {
		return 0, 0, fmt.Errorf("catalog corrupt: bad dirent value %x", v)
	}
	return keyIno(v), binary.BigEndian.Uint32(v[8:]), nil
}

func deletedVal(mode uint32, seq uint64) []byte {
	v := make([]byte, 12)
	binary.BigEndian.PutUint32(v, mode)
	binary.BigEndian.PutUint64(v[4:], seq)
	return v
}

func encodeVersion(v *Version) []byte {
	b := make([]byte, verValSize)
	copy(b, v.Recipe[:])
	binary.BigEndian.PutUint64(b[chunkstore.IDSize:], uint64(v.Size))
	putTimeBE(b[chunkstore.IDSize+8:], v.Mtime)
	binary.BigEndian.PutUint64(b[verValSize1:], uint64(v.Holes))
	return b
}

// decodeVersion decodes a versions key and value.
func decodeVersion(k, val []byte) (Ino, Version, error) {
	if len(k) != 20 || (len(val) != verValSize && len(val) != verValSize1) {
		return 0, Version{}, fmt.Errorf("catalog corrupt: bad version entry %x", k)
	}
	v := Version{
		ID:    VersionID{Nanos: int64(binary.BigEndian.Uint64(k[8:])), Seq: binary.BigEndian.Uint32(k[16:])},
		Size:  int64(binary.BigEndian.Uint64(val[chunkstore.IDSize:])),
		Mtime: getTimeBE(val[chunkstore.IDSize+8:]),
	}
	copy(v.Recipe[:], val)
	if len(val) == verValSize {
		v.Holes = int64(binary.BigEndian.Uint64(val[verValSize1:]))
	}
	return keyIno(k), v, nil
}

func beUint64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// keyHasPrefix reports whether a cursor key is still within prefix.
func keyHasPrefix(k, prefix []byte) bool { return k != nil && bytes.HasPrefix(k, prefix) }
