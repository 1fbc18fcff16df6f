package fs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/recipe"
	"github.com/casfs/casfs/versions"
)

// errnoTable maps the errors casfs's packages return to the errno a
// program sees. It is the only place where Go errors become errno.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
}{
	{versions.ErrNotExist, syscall.ENOENT},
	{versions.ErrExist, syscall.EEXIST},
	{versions.ErrNotEmpty, syscall.ENOTEMPTY},
	{versions.ErrNotDir, syscall.ENOTDIR},
	{versions.ErrIsDir, syscall.EISDIR},
	{versions.ErrNoAttr, syscall.ENODATA},
	{versions.ErrInvalid, syscall.EINVAL},
	{versions.ErrReadOnly, syscall.EROFS},
	{versions.ErrNameLimit, syscall.ENAMETOOLONG},
	{versions.ErrPermission, syscall.EPERM},
	{versions.ErrInUse, syscall.EBUSY},
	{chunkstore.ErrNotFound, syscall.EIO},
	{chunkstore.ErrCorrupt, syscall.EIO},
	{chunkstore.ErrUnavailable, syscall.EIO},
	{recipe.ErrInvalid, syscall.EIO},
	{context.Canceled, syscall.EINTR},
	{context.DeadlineExceeded, syscall.ETIMEDOUT},
	{os.ErrNotExist, syscall.ENOENT},
}

// toErrno turns err into an errno. Errors that already are errno (from
// the staging file's system calls, e.g. ENOSPC) pass through; unknown errors
// are logged with what was being done and become EIO.
func toErrno(err error, op string, args ...any) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, e := range errnoTable {
		if errors.Is(err, e.err) {
			if e.errno == syscall.EIO {
				slog.Error(op, append(args, "err", err)...)
			}
			return e.errno
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	slog.Error(op, append(args, "err", err)...)
	return syscall.EIO
}
