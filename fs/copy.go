package fs

import (
	"context"
	"errors"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/casfs/casfs/recipe"
)

// copy_file_range(2) between files of the mount (what cp does by default)
// is answered here, in the server: the bytes go from the source's read
// path to the destination's staging file without two trips through the
// kernel. Without it the kernel falls back to reading and writing through
// FUSE. A restore (cp of a .versions/ file over its live file) is the
// common case.
var (
	_ gofs.NodeCopyFileRanger = (*fileNode)(nil)
	_ gofs.NodeCopyFileRanger = (*versionFile)(nil)
)

// copyRangeBuf bounds the bytes one copy holds at a time.
const copyRangeBuf = 1 << 20

func (n *fileNode) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64,
	out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	var rec *recipe.Recipe
	if w, ok := fhOut.(*handle); ok && w.n != n {
		n.mu.RLock()
		staged := n.st != nil
		n.mu.RUnlock()
		if !staged {
			rec, _ = n.headRecipe(uninterruptible(ctx))
		}
	}
	return n.fs.copyFileRange(ctx, rec, fhIn, offIn, fhOut, offOut, length)
}

func (v *versionFile) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64,
	out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	return v.fs.copyFileRange(ctx, v.rec.Load(), fhIn, offIn, fhOut, offOut, length)
}

// copyFileRange copies with copyWhole if it can (rec, if not nil, is the
// source's committed recipe), else with copyRange.
func (f *FS) copyFileRange(ctx context.Context, rec *recipe.Recipe, in gofs.FileHandle, offIn uint64, out gofs.FileHandle, offOut uint64, length uint64) (uint32, syscall.Errno) {
	if w, ok := out.(*handle); ok && w.write && rec != nil {
		if k, done, errno := copyWhole(ctx, rec, w, offIn, offOut, length); done {
			if errno == 0 {
				f.copied.Add(int64(k))
				f.wholeCopies.Add(1)
			}
			return k, errno
		}
	}
	k, errno := copyRange(uninterruptible(ctx), in, offIn, out, offOut, length)
	f.copied.Add(int64(k))
	return k, errno
}

// copyWhole is the copy of a whole committed file into an empty one, as a
// restore from .versions/ is: the destination's staging file gets the
// source's bytes the way staging a file does (Materialize), and the
// source's recipe becomes its prefix, so the commit at close reuses the
// chunks instead of chunking and hashing the copy again. The destination
// is locked exclusively throughout, so no write can slip in between the
// bytes and the prefix that describes them. done is false, with nothing
// done, for any other copy.
func copyWhole(ctx context.Context, rec *recipe.Recipe, w *handle, offIn, offOut, length uint64) (k uint32, done bool, errno syscall.Errno) {
	if offIn != 0 || offOut != 0 || rec.Size == 0 || uint64(rec.Size) > length || rec.Size > 1<<32-1 {
		return 0, false, 0
	}
	n := w.n
	if w.direct {
		// As Write does: setuid and setgid go first (it takes n.mu).
		caller, _ := fuse.FromContext(ctx)
		if errno := n.killPrivs(uninterruptible(ctx), caller); errno != 0 {
			return 0, true, errno
		}
	}
	ctx = uninterruptible(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.st
	if st == nil || st.size.Load() != 0 {
		return 0, false, 0
	}
	st.wrote(0)
	if err := n.fs.repo.Materialize(ctx, rec, st.f); err != nil {
		// Nothing was copied: the staging file is empty again.
		if terr := st.f.Truncate(0); terr != nil {
			err = errors.Join(err, terr)
		}
		return 0, true, toErrno(err, "copy", "path", n.path())
	}
	st.size.Store(rec.Size)
	st.setPrefix(rec)
	st.dirty.Store(true)
	st.mtime.Store(now().UnixNano())
	return uint32(rec.Size), true, 0
}

// copyRange copies up to length bytes from offIn of the file open as in to
// offOut of the file open as out, through the handles' own Read and Write,
// so that it reads what a read would (staging file, recipe, holes as
// zeros) and writes as a write would (staging, the change recorded for the
// next commit). It stops early at the end of the source, and reports what
// it copied before an error, as write(2) does.
func copyRange(ctx context.Context, in gofs.FileHandle, offIn uint64, out gofs.FileHandle, offOut uint64, length uint64) (uint32, syscall.Errno) {
	r, ok := in.(gofs.FileReader)
	w, okW := out.(*handle)
	if !ok || !okW || !w.write {
		return 0, syscall.EBADF
	}
	length = min(length, 1<<32-1) // what the reply can count
	buf := make([]byte, min(length, copyRangeBuf))
	var done uint64
	for done < length {
		want := min(length-done, uint64(len(buf)))
		res, errno := r.Read(ctx, buf[:want], int64(offIn+done))
		if errno != 0 {
			return partial(done, errno)
		}
		data, st := res.Bytes(buf[:want])
		if !st.Ok() {
			res.Done()
			return partial(done, syscall.Errno(st))
		}
		if len(data) == 0 {
			res.Done()
			break // the end of the source
		}
		k, errno := w.Write(ctx, data, int64(offOut+done))
		res.Done()
		done += uint64(k)
		if errno != 0 {
			return partial(done, errno)
		}
		if int(k) < len(data) || uint64(len(data)) < want {
			break
		}
	}
	return uint32(done), 0
}

// partial is what a copy that failed after done bytes reports: the bytes,
// if any, else the error.
func partial(done uint64, errno syscall.Errno) (uint32, syscall.Errno) {
	if done > 0 {
		return uint32(done), 0
	}
	return 0, errno
}
