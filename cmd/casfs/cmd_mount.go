package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	casfs "github.com/casfs/casfs/fs"
)

var mountOpts struct {
	staging    string
	cacheSize  string
	allowOther bool
	clearStale bool
	debug      bool
	readAhead  int
}

func init() {
	register(&command{
		name:  "mount",
		args:  "STORE MOUNTPOINT",
		short: "mount a store as a filesystem (in the foreground)",
		long: `Serves STORE at MOUNTPOINT until interrupted (Ctrl-C, SIGTERM) or unmounted
(casfs umount, fusermount3 -u, umount). Any program can read and write there;
each close of a changed file commits a new version, and every version of every
file is under MOUNTPOINT/.versions/ (hidden from listings, reachable by name).

Writes go to a staging directory (default: STORE/staging for a local store)
until close. On SIGINT/SIGTERM open files are committed before unmounting.

MOUNTPOINT must be an existing empty directory outside the store. A mount left
behind by a killed casfs ("Transport endpoint is not connected") is detected:
clear it with 'casfs umount MOUNTPOINT' or pass --clear-stale.`,
		examples: `  mkdir -p /mnt/cas && casfs mount ~/cas /mnt/cas
  cp report.txt /mnt/cas/ && ls /mnt/cas/.versions/report.txt/
  cp /mnt/cas/.versions/report.txt/report.2026-11-22T01-47-03.123456789Z.txt /mnt/cas/report.txt
  casfs mount --cache-size 2G --allow-other /srv/cas /mnt/cas`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&mountOpts.staging, "staging", "", "directory for files being written (default STORE/staging, or $TMPDIR/casfs-staging-ID)")
			fs.StringVar(&mountOpts.cacheSize, "cache-size", "1G", "in-memory chunk cache size")
			fs.BoolVar(&mountOpts.allowOther, "allow-other", false, "let other users use the mount (root, or user_allow_other in /etc/fuse.conf)")
			fs.IntVar(&mountOpts.readAhead, "read-ahead", 16, "chunks to prefetch ahead of a sequential reader")
			fs.BoolVar(&mountOpts.clearStale, "clear-stale", false, "unmount a stale mount left at MOUNTPOINT by a killed casfs first")
			fs.BoolVar(&mountOpts.debug, "debug", false, "log every FUSE request")
		},
		minArgs: 2, maxArgs: 2,
		run: runMount,
	})
}

func runMount(ctx context.Context, args []string) error {
	loc, mnt := args[0], args[1]
	cacheBytes, err := parseSize(mountOpts.cacheSize)
	if err != nil {
		return usagef("--cache-size: %v", err)
	}
	if mnt, err = checkMountpoint(mnt, mountOpts.clearStale); err != nil {
		return err
	}
	if !strings.Contains(loc, "://") {
		if err := checkOutside(loc, mnt); err != nil {
			return err
		}
	}
	if mountOpts.debug {
		logLevel.Set(slog.LevelDebug)
	}
	repo, err := openStore(ctx, loc, fmt.Sprintf("casfs mount on %s", mnt), false)
	if err != nil {
		return err
	}
	defer repo.Close()
	staging := mountOpts.staging
	if staging == "" {
		if d := repo.LocalDir(); d != "" {
			staging = filepath.Join(d, "staging")
		} else {
			// Several machines, or several mounts on this one, may
			// mount a remote store: one staging directory per store and
			// mountpoint, as a mount sweeps its staging directory.
			staging = filepath.Join(os.TempDir(), "casfs-staging-"+repo.Config().ID, strings.ReplaceAll(strings.Trim(mnt, "/"), "/", "_"))
		}
	}
	fsys, err := casfs.New(repo, casfs.Options{StagingDir: staging, CacheBytes: int64(cacheBytes), ReadAhead: mountOpts.readAhead})
	if err != nil {
		return err
	}
	server, err := casfs.Mount(fsys, mnt, casfs.MountOptions{
		FsName: "casfs:" + loc, AllowOther: mountOpts.allowOther, Debug: mountOpts.debug,
	})
	if err != nil {
		return err
	}
	slog.Info("mounted", "store", loc, "mountpoint", mnt, "staging", staging)

	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	select {
	case <-done:
		slog.Info("unmounted from outside", "mountpoint", mnt)
	case <-ctx.Done():
		slog.Info("stopping: committing open files, then unmounting", "mountpoint", mnt)
		if err := fsys.Shutdown(context.Background()); err != nil {
			slog.Error("commit before unmount", "err", err)
		}
		unmountWithRetry(server.Unmount, mnt, done)
	}
	// Anything written between the last commit and the unmount.
	err = fsys.Shutdown(context.Background())
	fsys.Close() // before the deferred repo.Close
	if err != nil {
		return fmt.Errorf("committing open files: %w", err)
	}
	return nil
}

// unmountWithRetry unmounts, retrying while the mount is busy (a file open
// or a shell inside it), then detaches lazily so casfs can still exit.
func unmountWithRetry(unmount func() error, mnt string, done <-chan struct{}) {
	for i := 0; i < 10; i++ {
		if err := unmount(); err == nil {
			<-done
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	slog.Warn("mount busy; detaching it lazily", "mountpoint", mnt)
	if err := casfs.Unmount(mnt, true); err != nil {
		slog.Error("lazy unmount", "err", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// checkMountpoint refuses mountpoints casfs should not mount on, with a
// message that says what to do, and returns the absolute path.
func checkMountpoint(mnt string, clearStale bool) (string, error) {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err == nil && casfs.IsMountpoint(abs) {
		// For up to the attribute timeout after its server died, the
		// kernel answers stat of a FUSE mount's root from its cache;
		// statfs always asks the server, so it tells a dead one at once
		// (a supervisor restarting casfs with --clear-stale is that fast).
		var sfs unix.Statfs_t
		if serr := unix.Statfs(abs, &sfs); errors.Is(serr, syscall.ENOTCONN) {
			err = serr
		}
	}
	if errors.Is(err, syscall.ENOTCONN) {
		if !clearStale {
			return "", fmt.Errorf("mountpoint %s is a stale mount left by a casfs that was killed (transport endpoint is not connected): clear it with 'casfs umount %s' (or 'fusermount3 -u %s'), or mount with --clear-stale", abs, mnt, mnt)
		}
		slog.Info("clearing stale mount", "mountpoint", abs)
		if err := casfs.Unmount(abs, true); err != nil {
			return "", err
		}
		fi, err = os.Stat(abs)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("mountpoint %s does not exist (create it with 'mkdir -p %s')", abs, mnt)
	case err != nil:
		return "", fmt.Errorf("mountpoint: %w", err)
	case !fi.IsDir():
		return "", fmt.Errorf("mountpoint %s is not a directory", abs)
	case casfs.IsMountpoint(abs):
		return "", fmt.Errorf("mountpoint %s is already a mount point (see 'findmnt %s'); unmount it first", abs, abs)
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		return "", fmt.Errorf("mountpoint: %w", err)
	}
	if len(ents) > 0 {
		return "", fmt.Errorf("mountpoint %s is not empty (%d entries): mounting would hide them; use an empty directory", abs, len(ents))
	}
	return abs, nil
}

// checkOutside refuses a mountpoint inside the local store, or a store
// inside the mountpoint: either way the mount would hide or loop on the
// store's own files.
func checkOutside(store, mnt string) error {
	s, err := filepath.Abs(store)
	if err != nil {
		return err
	}
	if r, err := filepath.EvalSymlinks(s); err == nil {
		s = r
	}
	m := mnt
	if r, err := filepath.EvalSymlinks(m); err == nil {
		m = r
	}
	within := func(a, b string) bool { return a == b || strings.HasPrefix(a, b+string(filepath.Separator)) }
	if within(m, s) {
		return fmt.Errorf("mountpoint %s lies inside the store %s: choose a directory outside it", mnt, store)
	}
	if within(s, m) {
		return fmt.Errorf("store %s lies inside the mountpoint %s: mounting would hide it", store, mnt)
	}
	return nil
}
