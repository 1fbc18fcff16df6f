package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
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
	k, errno := copyRange(ctx, fhIn, offIn, fhOut, offOut, length)
	n.fs.copied.Add(int64(k))
	return k, errno
}

func (v *versionFile) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64,
	out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	k, errno := copyRange(ctx, fhIn, offIn, fhOut, offOut, length)
	v.fs.copied.Add(int64(k))
	return k, errno
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
