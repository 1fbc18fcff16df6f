package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/casfs/casfs/versions"
)

// A file whose last name goes while it is open and before it has a version
// leaves the catalog at once: it has no history to keep. POSIX says its open
// descriptors keep working until closed, and programs rely on it: a
// temporary file is created, unlinked and then used through its descriptor
// only (ftruncate, fchmod, futimens, fsetxattr, as stress-ng and many
// databases' temp files do). Such a file lives on in its node: its
// attributes in last, its xattrs in orphanX, gone with the node. Its
// content is the staging file, which every write already has.

// orphaned says whether err from the catalog means that n is such a file:
// not in the catalog any more, but known to the kernel, which only asks
// about inodes it still holds.
func (n *fileNode) orphaned(err error) bool {
	return errors.Is(err, versions.ErrNotExist) && n.last.Load() != nil
}

// orphanedErrno is orphaned for an errno the catalog's error became.
func (n *fileNode) orphanedErrno(errno syscall.Errno) bool {
	return errno == syscall.ENOENT && n.last.Load() != nil
}

// setOrphanMeta applies s to the attributes of an orphaned file.
func (n *fileNode) setOrphanMeta(s versions.SetAttr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := *n.last.Load()
	s.Apply(&a, now())
	n.last.Store(&a)
}

// The xattr calls try the catalog first, so a file that is still there
// (or is there again: history kept under the same inode) is served as any
// other. Only ENOENT from the catalog for a file open here turns to the
// orphan's own xattrs.

func (n *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	sz, errno := n.node.Getxattr(ctx, attr, dest)
	if !n.orphanedErrno(errno) {
		return sz, errno
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	v, ok := n.orphanX[attr]
	switch {
	case !ok:
		return 0, syscall.ENODATA
	case len(dest) < len(v):
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *fileNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	errno := n.node.Setxattr(ctx, attr, data, flags)
	if !n.orphanedErrno(errno) {
		return errno
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.orphanX[attr]
	switch {
	case ok && flags&versions.XattrCreate != 0:
		return syscall.EEXIST
	case !ok && flags&versions.XattrReplace != 0:
		return syscall.ENODATA
	}
	if n.orphanX == nil {
		n.orphanX = make(map[string][]byte)
	}
	n.orphanX[attr] = append([]byte(nil), data...)
	n.touchOrphanLocked()
	return 0
}

func (n *fileNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	errno := n.node.Removexattr(ctx, attr)
	if !n.orphanedErrno(errno) {
		return errno
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.orphanX[attr]; !ok {
		return syscall.ENODATA
	}
	delete(n.orphanX, attr)
	n.touchOrphanLocked()
	return 0
}

func (n *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	sz, errno := n.node.Listxattr(ctx, dest)
	if !n.orphanedErrno(errno) {
		return sz, errno
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	var b []byte
	for name := range n.orphanX {
		b = append(append(b, name...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// touchOrphanLocked sets an orphan's ctime, as an xattr change does. n.mu
// is held.
func (n *fileNode) touchOrphanLocked() {
	a := *n.last.Load()
	a.Ctime = now()
	n.last.Store(&a)
}
