package fs

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/versions"
)

// MountOptions are the kernel-facing choices of a mount.
type MountOptions struct {
	FsName     string // shown in /proc/mounts, e.g. "casfs:/srv/cas"
	AllowOther bool   // let users other than the mounter in (needs root or user_allow_other)
	Debug      bool   // log every FUSE request
}

// Mount serves f at mountpoint and returns the running server.
//
// The options are the ones measured to matter (../shared/FUSE-NOTES.md):
// attribute and entry timeouts set (nil means 0 s and 2-3× slower
// metadata), 1 MiB writes, kernel read-ahead raised to 1 MiB after mounting,
// default_permissions so the kernel checks modes. Passthrough is off: our
// data is chunks, not one backing file.
func Mount(f *FS, mountpoint string, mo MountOptions) (*fuse.Server, error) {
	timeout := time.Second
	// go-fuse's own messages (e.g. a failed splice, once per read) are
	// debugging detail: they go to the log only with --debug.
	goFuseLog := slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)
	opts := &gofs.Options{
		Logger:          goFuseLog,
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		NullPermissions: true, // a file created with mode 0000 keeps it
		// The root's inode number is the catalog's, as every other node's;
		// without it go-fuse reports st_ino 0 for the mountpoint.
		RootStableAttr: &gofs.StableAttr{Ino: uint64(versions.RootIno), Mode: syscall.S_IFDIR},
		MountOptions: fuse.MountOptions{
			FsName:       mo.FsName,
			Name:         "casfs",
			AllowOther:   mo.AllowOther,
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			Options:      []string{"default_permissions"},
			Debug:        mo.Debug,
			Logger:       goFuseLog,
			// Read replies are bytes in memory, not a file to splice from.
			DisableSplice: true,
			// As root, mount(2) directly; otherwise through fusermount3.
			DirectMount:          os.Geteuid() == 0,
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
			// O_TRUNC arrives with the open instead of as a separate
			// truncate before it, which would look like a change of its
			// own and commit an empty version.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
		},
	}
	server, err := gofs.Mount(mountpoint, f.Root(), opts)
	if err != nil {
		return nil, fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	if err := setReadAhead(mountpoint, 1024); err != nil {
		slog.Debug("could not raise kernel read-ahead", "mountpoint", mountpoint, "err", err)
	}
	return server, nil
}

// setReadAhead writes the mount's backing-device read-ahead: go-fuse's
// MaxReadAhead can only lower the kernel's default of 128 KiB.
func setReadAhead(mountpoint string, kb int) error {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return err
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(p, []byte(fmt.Sprint(kb)), 0o644)
}

// Unmount detaches mountpoint: unmount(2) when allowed, fusermount3
// otherwise; lazily (detach now, finish when the last user lets go) if
// lazy is set.
func Unmount(mountpoint string, lazy bool) error {
	flags := 0
	if lazy {
		flags = unix.MNT_DETACH
	}
	err := unix.Unmount(mountpoint, flags)
	if err == nil || err == syscall.EINVAL && !isMountpoint(mountpoint) {
		if err != nil {
			return fmt.Errorf("%s is not mounted", mountpoint)
		}
		return nil
	}
	if err != syscall.EPERM {
		return fmt.Errorf("unmounting %s: %w", mountpoint, err)
	}
	return fusermountU(mountpoint, lazy)
}

// isMountpoint reports whether p is the root of a mount: its device
// differs from its parent's (or it is /). A dead FUSE mount (ENOTCONN) counts.
func isMountpoint(p string) bool {
	var st, pst unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err == syscall.ENOTCONN
	}
	if err := unix.Lstat(p+"/..", &pst); err != nil {
		return false
	}
	return st.Dev != pst.Dev || st.Ino == pst.Ino
}

// IsMountpoint is isMountpoint for the CLI's checks.
func IsMountpoint(p string) bool { return isMountpoint(p) }
