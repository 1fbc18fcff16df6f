package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/casfs/casfs/versions"
)

// versionsName is the hidden history directory at the root.
const versionsName = ".versions"

type dirNode struct{ node }

var (
	_ gofs.NodeLookuper  = (*dirNode)(nil)
	_ gofs.NodeReaddirer = (*dirNode)(nil)
	_ gofs.NodeMkdirer   = (*dirNode)(nil)
	_ gofs.NodeCreater   = (*dirNode)(nil)
	_ gofs.NodeSymlinker = (*dirNode)(nil)
	_ gofs.NodeLinker    = (*dirNode)(nil)
	_ gofs.NodeUnlinker  = (*dirNode)(nil)
	_ gofs.NodeRmdirer   = (*dirNode)(nil)
	_ gofs.NodeRenamer   = (*dirNode)(nil)
	_ gofs.NodeSetattrer = (*dirNode)(nil)
	_ gofs.NodeMknoder   = (*dirNode)(nil)
)

func (d *dirNode) isRoot() bool { return d.ino == versions.RootIno }

// reserved reports names that cannot be created: .versions at the root.
func (d *dirNode) reserved(name string) bool { return d.isRoot() && name == versionsName }

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if d.reserved(name) {
		return d.fs.historyRoot(ctx, &d.Inode, out)
	}
	a, err := d.fs.cat.Lookup(ctx, d.ino, name)
	if err != nil {
		return nil, toErrno(err, "lookup", "dir", d.path(), "name", name)
	}
	ch := d.fs.newChild(ctx, &d.Inode, a)
	entryAttr(ch, a, out)
	return ch, 0
}

func (d *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ctx = uninterruptible(ctx)
	ents, err := d.fs.cat.ReadDir(ctx, d.ino)
	if err != nil {
		return nil, toErrno(err, "readdir", "dir", d.path())
	}
	out := dots(&d.Inode, make([]fuse.DirEntry, 0, len(ents)+2))
	for _, e := range ents {
		out = append(out, fuse.DirEntry{Name: e.Name, Ino: uint64(e.Ino), Mode: e.Mode & versions.ModeType})
	}
	return gofs.NewListDirStream(out), 0
}

// dots appends the "." and ".." entries of the directory n to list. The
// kernel does not make them up for a FUSE filesystem, and without them
// `ls -a` shows neither and programs that skip the first two entries of
// a listing skip real ones. ".." of the root, or of a directory whose
// parent is gone, is the directory itself.
func dots(n *gofs.Inode, list []fuse.DirEntry) []fuse.DirEntry {
	self := n.StableAttr().Ino
	up := self
	if _, p := n.Parent(); p != nil {
		up = p.StableAttr().Ino
	}
	return append(list,
		fuse.DirEntry{Name: ".", Ino: self, Mode: syscall.S_IFDIR},
		fuse.DirEntry{Name: "..", Ino: up, Mode: syscall.S_IFDIR})
}

// newAttr is the attribute template for an entry created by the caller of
// ctx in d: the caller's uid, and its gid unless d is setgid (BSD group
// semantics, which directories with the setgid bit ask for).
func (d *dirNode) newAttr(ctx context.Context, mode uint32) (versions.Attr, error) {
	uid, gid := caller(ctx)
	a := versions.Attr{Mode: mode, Uid: uid, Gid: gid}
	parent, err := d.fs.cat.GetAttr(ctx, d.ino)
	if err != nil {
		return a, err
	}
	if parent.Mode&syscall.S_ISGID != 0 {
		a.Gid = parent.Gid
		if mode&versions.ModeType == versions.ModeDir {
			a.Mode |= syscall.S_ISGID
		}
	}
	return a, nil
}

func (d *dirNode) create(ctx context.Context, name string, mode uint32, target string, out *fuse.EntryOut) (*gofs.Inode, versions.Attr, syscall.Errno) {
	return d.createAttr(ctx, name, mode, versions.Attr{Target: target}, out)
}

// createAttr is create with more of the new inode given: a symlink's
// target, a device's number.
func (d *dirNode) createAttr(ctx context.Context, name string, mode uint32, extra versions.Attr, out *fuse.EntryOut) (*gofs.Inode, versions.Attr, syscall.Errno) {
	if d.reserved(name) {
		return nil, versions.Attr{}, syscall.EEXIST
	}
	a, err := d.newAttr(ctx, mode)
	if err == nil {
		a.Target, a.Rdev = extra.Target, extra.Rdev
		a, err = d.fs.cat.Create(ctx, d.ino, name, a)
	}
	if err != nil {
		return nil, a, toErrno(err, "create", "dir", d.path(), "name", name)
	}
	ch := d.fs.newChild(ctx, &d.Inode, a)
	entryAttr(ch, a, out)
	return ch, a, 0
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	ch, _, errno := d.create(ctx, name, versions.ModeDir|mode&versions.ModePerm, "", out)
	return ch, errno
}

func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	ch, _, errno := d.create(ctx, name, versions.ModeSymlink|0o777, target, out)
	return ch, errno
}

// Mknod makes a regular file, a FIFO, a socket or a device node. The last
// three are names with attributes: the kernel serves a FIFO's data itself,
// and a device node is only usable where the mount allows devices (casfs
// mounts nodev).
func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG, 0:
		ch, _, errno := d.create(ctx, name, versions.ModeRegular|mode&versions.ModePerm, "", out)
		return ch, errno
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		ch, _, errno := d.createAttr(ctx, name, mode&(versions.ModeType|versions.ModePerm), versions.Attr{Rdev: dev}, out)
		return ch, errno
	}
	return nil, syscall.EINVAL
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	ch, _, errno := d.create(ctx, name, versions.ModeRegular|mode&versions.ModePerm, "", out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	fn := ch.Operations().(*fileNode)
	fh, fuseFlags, errno := fn.open(ctx, flags, true)
	return ch, fh, fuseFlags, errno
}

func (d *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if d.reserved(name) {
		return nil, syscall.EEXIST
	}
	var ino versions.Ino
	switch t := target.(type) {
	case *fileNode:
		ino = t.ino
	case *symlinkNode:
		ino = t.ino
	case *dirNode:
		return nil, syscall.EPERM
	default:
		return nil, syscall.EXDEV // from .versions
	}
	a, err := d.fs.cat.Link(ctx, ino, d.ino, name)
	if err != nil {
		return nil, toErrno(err, "link", "dir", d.path(), "name", name)
	}
	ch := d.fs.newChild(ctx, &d.Inode, a)
	entryAttr(ch, a, out)
	return ch, 0
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	ctx = uninterruptible(ctx)
	if d.reserved(name) {
		return syscall.EROFS
	}
	return toErrno(d.fs.cat.Remove(ctx, d.ino, name, false), "unlink", "dir", d.path(), "name", name)
}

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	ctx = uninterruptible(ctx)
	if d.reserved(name) {
		return syscall.EROFS
	}
	return toErrno(d.fs.cat.Remove(ctx, d.ino, name, true), "rmdir", "dir", d.path(), "name", name)
}

func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	np, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EROFS // into .versions
	}
	if d.reserved(name) || np.reserved(newName) {
		return syscall.EROFS
	}
	err := d.fs.cat.Rename(ctx, d.ino, name, np.ino, newName, flags)
	return toErrno(err, "rename", "dir", d.path(), "name", name, "to", newName)
}

func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	a, err := d.setMeta(ctx, in)
	if err != nil {
		return toErrno(err, "setattr", "path", d.path())
	}
	fillAttr(a, &out.Attr)
	return 0
}
