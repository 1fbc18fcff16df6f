package fs

import (
	"context"
	"errors"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/casfs/casfs/versions"
)

// node is what every live directory, file and symlink shares: its catalog
// inode, metadata and extended attributes.
type node struct {
	gofs.Inode
	fs  *FS
	ino versions.Ino
}

var (
	_ gofs.NodeGetattrer     = (*node)(nil)
	_ gofs.NodeGetxattrer    = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeListxattrer   = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
	_ gofs.NodeStatfser      = (*node)(nil)
)

// path is the node's path in the mount, for log lines.
func (n *node) path() string { return "/" + n.Path(nil) }

func (n *node) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	a, err := n.fs.cat.GetAttr(ctx, n.ino)
	if err != nil {
		return toErrno(err, "getattr", "path", n.path())
	}
	fillAttr(a, &out.Attr)
	return 0
}

// metaChanges is the metadata part of a setattr (mode, owner, times).
func metaChanges(in *fuse.SetAttrIn) versions.SetAttr {
	var s versions.SetAttr
	if m, ok := in.GetMode(); ok {
		s.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		s.Uid = &u
	}
	if g, ok := in.GetGID(); ok {
		s.Gid = &g
	}
	if t, ok := in.GetATime(); ok {
		s.Atime = &t
	}
	if t, ok := in.GetMTime(); ok {
		s.Mtime = &t
	}
	return s
}

// setMeta applies the metadata part of a setattr.
func (n *node) setMeta(ctx context.Context, in *fuse.SetAttrIn) (versions.Attr, error) {
	s := metaChanges(in)
	if s == (versions.SetAttr{}) {
		return n.fs.cat.GetAttr(ctx, n.ino)
	}
	return n.fs.cat.SetAttr(ctx, n.ino, s)
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	key := xattrKey{n.ino, attr}
	if n.fs.noXattr.Contains(key) {
		return 0, syscall.ENODATA
	}
	v, err := n.fs.cat.GetXattr(ctx, n.ino, attr)
	if errors.Is(err, versions.ErrNoAttr) {
		n.fs.noXattr.Add(key, struct{}{})
	}
	if err != nil {
		return 0, toErrno(err, "getxattr", "path", n.path())
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	if attr == "system.posix_acl_access" || attr == "system.posix_acl_default" {
		// Without FUSE_POSIX_ACL the kernel hands ACLs over as plain
		// xattrs and neither enforces them nor derives the mode from
		// them. cp -a and cp -p set the mode that way (an ACL equal to
		// it): stored as an xattr, every copied file stayed 0600. Refused,
		// they fall back to chmod, as on a filesystem without ACLs.
		return syscall.EOPNOTSUPP
	}
	err := n.fs.cat.SetXattr(ctx, n.ino, attr, data, int(flags))
	n.fs.noXattr.Remove(xattrKey{n.ino, attr})
	return toErrno(err, "setxattr", "path", n.path())
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	ctx = uninterruptible(ctx)
	return toErrno(n.fs.cat.RemoveXattr(ctx, n.ino, attr), "removexattr", "path", n.path())
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	names, err := n.fs.cat.ListXattr(ctx, n.ino)
	if err != nil {
		return 0, toErrno(err, "listxattr", "path", n.path())
	}
	size := 0
	for _, s := range names {
		size += len(s) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	b := dest[:0]
	for _, s := range names {
		b = append(b, s...)
		b = append(b, 0)
	}
	return uint32(size), 0
}

// Statfs reports the space of the staging directory's filesystem: for the
// local store that is where chunks go too.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	var st syscall.Statfs_t
	dir := n.fs.repo.LocalDir()
	if dir == "" {
		dir = n.fs.opts.StagingDir
	}
	if err := syscall.Statfs(dir, &st); err != nil {
		return toErrno(err, "statfs")
	}
	out.FromStatfsT(&st)
	out.NameLen = 255
	return 0
}

// newChild returns the inode for catalog entry a under parent. go-fuse
// itself reuses the inode the kernel already knows for this Ino (a hard
// link, or a node looked up before) and drops the new one, but only after
// the lookup answered. So a file with a staging file is answered by its
// own node: a new one knows only the catalog, and its size, the last
// commit's, would make the kernel cut the file it holds to that size (a
// lookup's attributes overwrite the kernel's), and reads past it return
// nothing.
func (f *FS) newChild(ctx context.Context, parent *gofs.Inode, a versions.Attr) *gofs.Inode {
	f.mu.Lock()
	live := f.staged[a.Ino]
	f.mu.Unlock()
	// A node the kernel forgot (its last writer's commit failed, so the
	// staging file stayed for Shutdown) is not handed back to go-fuse,
	// which has dropped it: the kernel holds nothing of that file to cut.
	if live != nil && !live.EmbeddedInode().Forgotten() {
		return parent.NewInode(ctx, live, gofs.StableAttr{Mode: a.Mode & versions.ModeType, Ino: uint64(a.Ino)})
	}
	var emb gofs.InodeEmbedder
	switch {
	case a.IsDir():
		emb = &dirNode{node: node{fs: f, ino: a.Ino}}
	case a.IsSymlink():
		emb = &symlinkNode{node: node{fs: f, ino: a.Ino}}
	case a.IsSpecial():
		emb = &specialNode{node: node{fs: f, ino: a.Ino}}
	default:
		emb = &fileNode{node: node{fs: f, ino: a.Ino}}
	}
	return parent.NewInode(ctx, emb, gofs.StableAttr{Mode: a.Mode & versions.ModeType, Ino: uint64(a.Ino)})
}

// entryAttr fills a lookup answer for child, taking a file's unsaved size
// and mtime into account.
func entryAttr(ch *gofs.Inode, a versions.Attr, out *fuse.EntryOut) {
	if fn, ok := ch.Operations().(*fileNode); ok {
		fn.last.Store(&a)
		a = fn.overlay(a)
	}
	fillAttr(a, &out.Attr)
}

type symlinkNode struct{ node }

var _ gofs.NodeReadlinker = (*symlinkNode)(nil)

func (s *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ctx = uninterruptible(ctx)
	a, err := s.fs.cat.GetAttr(ctx, s.ino)
	if err != nil {
		return nil, toErrno(err, "readlink", "path", s.path())
	}
	return []byte(a.Target), 0
}

func (s *symlinkNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return s.setattrNoSize(ctx, in, out)
}

// specialNode is a FIFO, a socket or a device node: attributes only. The
// kernel never sends this filesystem their opens, reads or writes.
type specialNode struct{ node }

func (s *specialNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return s.setattrNoSize(ctx, in, out)
}

// setattrNoSize is Setattr for a node without content to truncate.
func (n *node) setattrNoSize(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	if _, ok := in.GetSize(); ok {
		return syscall.EINVAL
	}
	a, err := n.setMeta(ctx, in)
	if err != nil {
		return toErrno(err, "setattr", "path", n.path())
	}
	fillAttr(a, &out.Attr)
	return 0
}
