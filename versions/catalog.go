package versions

import (
	"context"
	"errors"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// Ino is a stable inode number. It is allocated once when an entry is created
// and never derived from content, so two files with the same bytes are never
// taken for hard links.
type Ino uint64

// RootIno is the root directory.
const RootIno Ino = 1

// File type bits of Attr.Mode, as in st_mode.
const (
	ModeType    = 0o170000
	ModeDir     = 0o040000
	ModeRegular = 0o100000
	ModeSymlink = 0o120000
	// Special files: they have no content in the store, only a name and
	// attributes (and a device number for devices).
	ModeFifo   = 0o010000
	ModeChar   = 0o020000
	ModeBlock  = 0o060000
	ModeSocket = 0o140000
	ModePerm   = 0o7777 // permission, setuid, setgid and sticky bits
)

// Attr is what the catalog knows of one inode.
type Attr struct {
	Ino   Ino
	Mode  uint32 // st_mode: type bits | permission bits
	Uid   uint32
	Gid   uint32
	Nlink uint32 // directory entries naming a file; 0 once deleted
	Size  int64  // HEAD's size for a file, len(Target) for a symlink
	// Holes is how many of HEAD's bytes are holes: the file takes Size -
	// Holes bytes of chunks (st_blocks), which is how cp and tar tell a
	// sparse file.
	Holes int64
	Atime time.Time
	Mtime time.Time
	Ctime time.Time
	// Target is a symlink's target.
	Target string
	// Rdev is a character or block device's device number (st_rdev).
	Rdev uint32
	// Head is the newest version of a regular file, zero if it has none
	// (a file created and never written).
	Head VersionID
	// Recipe is Head's recipe ID, zero if the file has no version.
	Recipe chunkstore.ID
}

// IsDir, IsRegular and IsSymlink test the type bits.
func (a Attr) IsDir() bool     { return a.Mode&ModeType == ModeDir }
func (a Attr) IsRegular() bool { return a.Mode&ModeType == ModeRegular }
func (a Attr) IsSymlink() bool { return a.Mode&ModeType == ModeSymlink }

// IsSpecial says a is a FIFO, a socket or a device node.
func (a Attr) IsSpecial() bool {
	switch a.Mode & ModeType {
	case ModeFifo, ModeSocket, ModeChar, ModeBlock:
		return true
	}
	return false
}

// IsDevice says a is a character or block device node.
func (a Attr) IsDevice() bool { t := a.Mode & ModeType; return t == ModeChar || t == ModeBlock }

// Dirent is one entry of a directory listing.
type Dirent struct {
	Name string
	Ino  Ino
	Mode uint32 // type bits only are guaranteed
}

// Deleted is a file or directory that was removed from a directory while it
// still had history. Its versions stay reachable (under .versions/ and from
// the CLI) until Purge removes them.
type Deleted struct {
	Name    string
	Ino     Ino
	Mode    uint32
	Deleted time.Time
}

// Version is one committed state of a regular file.
type Version struct {
	ID     VersionID
	Recipe chunkstore.ID // never zero for a committed version
	Size   int64
	Holes  int64 // bytes of Size in holes, from 0 to Size
	Mtime  time.Time
}

// SetAttr lists the attribute changes of Catalog.SetAttr; nil fields are left
// alone. File size is not here: changing content is a Commit.
type SetAttr struct {
	Mode  *uint32 // permission bits only; type bits are ignored
	Uid   *uint32
	Gid   *uint32
	Atime *time.Time
	Mtime *time.Time
}

// Apply makes the changes s lists to a, with now as the new ctime. It is
// what Catalog.SetAttr does to the stored inode, for callers that keep an
// inode's attributes themselves (a file open after it left the catalog).
func (s SetAttr) Apply(a *Attr, now time.Time) {
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
	a.Ctime = now
}

// Rename flags, as renameat2(2).
const (
	RenameNoReplace = 1 << 0
	RenameExchange  = 1 << 1
)

// Xattr flags, as setxattr(2).
const (
	XattrCreate  = 1
	XattrReplace = 2
)

// Errors returned by catalogs, matched with errors.Is. The FUSE layer maps
// them to errno in one place (fs/errno.go).
var (
	ErrNotExist  = errors.New("no such file or directory")
	ErrExist     = errors.New("file exists")
	ErrNotEmpty  = errors.New("directory not empty")
	ErrNotDir    = errors.New("not a directory")
	ErrIsDir     = errors.New("is a directory")
	ErrNoAttr    = errors.New("no such attribute")
	ErrInvalid   = errors.New("invalid argument")
	ErrReadOnly  = errors.New("read-only")
	ErrNameLimit = errors.New("file name too long")
)

// Catalog is the namespace and the history of a store: directories, files
// and symlinks by inode, and the versions of every regular file. It is the
// metadata counterpart of chunkstore.Store; one implementation keeps it in an
// embedded database next to a local store, another in RADOS omap.
//
// Contract, checked by versionstest.Run for every implementation:
//   - Every method is atomic: after a crash the catalog shows each change
//     either whole or not at all.
//   - Create, Link, Rename and Remove update ctime/mtime of the directories
//     they touch, and ctime of the inode, with the catalog's clock.
//   - Commit assigns a VersionID greater than every ID this catalog handed
//     out before (so versions sort by commit order even within one
//     nanosecond), makes it HEAD, and sets the file's size and mtime from it.
//   - When the last name of a regular file or symlink goes away (Remove, or
//     Rename over it) and it has versions, the inode is kept with Nlink 0 and
//     listed by Deleted(parent); otherwise it is dropped. Removing a directory
//     that still holds deleted entries keeps it the same way, so the history
//     under it stays reachable.
//   - Removing a version never touches chunks: a version's chunks are only
//     reclaimed by garbage collection once no version references them.
type Catalog interface {
	GetAttr(ctx context.Context, ino Ino) (Attr, error)
	Lookup(ctx context.Context, parent Ino, name string) (Attr, error)
	ReadDir(ctx context.Context, dir Ino) ([]Dirent, error)

	// Create makes a new entry named name in parent. a.Mode's type bits say
	// what it is; a.Ino, a.Nlink, a.Head and a.Recipe are ignored; zero
	// times are set to now. It fails with ErrExist if name is taken.
	Create(ctx context.Context, parent Ino, name string, a Attr) (Attr, error)
	// Link adds name in parent for the existing non-directory ino.
	Link(ctx context.Context, ino Ino, parent Ino, name string) (Attr, error)
	SetAttr(ctx context.Context, ino Ino, s SetAttr) (Attr, error)
	// Rename moves an entry, replacing an existing target as rename(2)
	// does (a directory target must be empty), or exchanging the two with
	// RenameExchange. Moving a directory below itself fails with ErrInvalid.
	Rename(ctx context.Context, parent Ino, name string, newParent Ino, newName string, flags uint32) error
	// Remove unlinks a file or symlink (dir false) or removes an empty
	// directory (dir true).
	Remove(ctx context.Context, parent Ino, name string, dir bool) error

	// Commit adds a version to the regular file ino and makes it HEAD.
	// v.ID is ignored and assigned. It works on a deleted inode too (a file
	// unlinked while open), whose history then grows in the deleted list.
	Commit(ctx context.Context, ino Ino, v Version) (Version, error)
	// Versions lists ino's versions, oldest first.
	Versions(ctx context.Context, ino Ino) ([]Version, error)
	// RemoveVersion drops one version. If it was HEAD the one before it
	// becomes HEAD (or the file is empty if none is left). A deleted inode
	// left with no versions is dropped.
	RemoveVersion(ctx context.Context, ino Ino, id VersionID) error
	// Deleted lists entries removed from dir that still have history.
	Deleted(ctx context.Context, dir Ino) ([]Deleted, error)
	// Purge removes ino with all its versions (recursively for a
	// directory): its name if it still has one, its deleted-list entries,
	// and the inode.
	Purge(ctx context.Context, ino Ino) error
	// Walk calls fn for every version of every inode, live or deleted, in
	// no particular order; garbage collection and fsck mark from it.
	Walk(ctx context.Context, fn func(ino Ino, v Version) error) error

	GetXattr(ctx context.Context, ino Ino, name string) ([]byte, error)
	SetXattr(ctx context.Context, ino Ino, name string, value []byte, flags int) error
	ListXattr(ctx context.Context, ino Ino) ([]string, error)
	RemoveXattr(ctx context.Context, ino Ino, name string) error

	Close() error
}
