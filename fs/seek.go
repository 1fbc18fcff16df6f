package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/recipe"
)

// The kernel answers lseek(2) itself except for SEEK_DATA and SEEK_HOLE,
// which it asks the filesystem about. Without an answer it takes the whole
// file for data, and cp, tar and rsync then copy a sparse file's holes out
// of the mount as zeros.
var (
	_ gofs.FileLseeker = (*handle)(nil)
	_ gofs.FileLseeker = (*versionHandle)(nil)
)

// Lseek finds data and holes in the staging file while there is one (what
// reads see then), and otherwise in HEAD's recipe, whose gaps are holes.
func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if whence != unix.SEEK_DATA && whence != unix.SEEK_HOLE {
		return 0, syscall.EINVAL
	}
	n := h.n
	n.mu.RLock()
	if st := n.st; st != nil {
		// The descriptor's position is never used (reads and writes
		// carry their offset), so seeking it is harmless.
		pos, err := unix.Seek(int(st.f.Fd()), int64(off), int(whence))
		n.mu.RUnlock()
		if err != nil {
			return 0, toErrno(err, "lseek staging", "path", n.path())
		}
		return uint64(pos), 0
	}
	n.mu.RUnlock()
	rec, err := n.headRecipe(ctx)
	if err != nil {
		return 0, toErrno(err, "lseek", "path", n.path())
	}
	return seekRecipe(rec, off, whence)
}

// Lseek finds data and holes in the version's recipe.
func (h *versionHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return seekRecipe(h.v.rec.Load(), off, whence)
}

// seekRecipe answers SEEK_DATA or SEEK_HOLE from rec: ENXIO at or past
// the end, and for SEEK_DATA when only a hole is left.
func seekRecipe(rec *recipe.Recipe, off uint64, whence uint32) (uint64, syscall.Errno) {
	var pos int64
	var ok bool
	switch whence {
	case unix.SEEK_DATA:
		pos, ok = rec.SeekData(int64(off))
	case unix.SEEK_HOLE:
		pos, ok = rec.SeekHole(int64(off))
	default:
		return 0, syscall.EINVAL
	}
	if !ok {
		return 0, syscall.ENXIO
	}
	return uint64(pos), 0
}
