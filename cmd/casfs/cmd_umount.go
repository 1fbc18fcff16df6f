package main

import (
	"context"
	"path/filepath"

	"github.com/spf13/pflag"

	casfs "github.com/casfs/casfs/fs"
)

var umountOpts struct{ lazy bool }

func init() {
	register(&command{
		name:  "umount",
		args:  "MOUNTPOINT",
		short: "unmount a casfs mount (also clears a stale one)",
		long: `Unmounts MOUNTPOINT. The casfs process serving it commits open files and
exits. A stale mount left by a killed casfs is cleared the same way. If a
program still has files open there, --lazy detaches it now and finishes when
they are closed.`,
		examples: `  casfs umount /mnt/cas
  casfs umount --lazy /mnt/cas`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVarP(&umountOpts.lazy, "lazy", "l", false, "detach now even if busy")
		},
		minArgs: 1, maxArgs: 1,
		run: func(ctx context.Context, args []string) error {
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			return casfs.Unmount(abs, umountOpts.lazy)
		},
	})
}
