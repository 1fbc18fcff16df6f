package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/casfs/casfs/versions"
)

func init() {
	register(&command{
		name:  "gc",
		args:  "STORE",
		short: "delete chunks that no version uses any more",
		long: `Reclaims the space of removed versions and of writes that crashed before
they committed. It marks every chunk referenced by any version (live or
deleted file) and deletes the rest. If any recipe cannot be read, nothing is
deleted: run fsck.

On a store that several machines write (rados://), a chunk that was stored or
reused within --margin is kept even if nothing uses it yet: a commit on
another machine may be about to. It goes in a later gc. The machines' clocks
must be less than the margin apart.`,
		examples: `  casfs rm ~/cas scratch/big.iso && casfs gc ~/cas
  casfs gc --margin 6h rados://cas`,
		flags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&gcOpts.margin, "margin", versions.DefaultGCMargin, "rados:// stores: keep unused chunks stored or reused within this long")
		},
		minArgs: 1, maxArgs: 1,
		run: runGC,
	})
}

var gcOpts struct{ margin time.Duration }

func runGC(ctx context.Context, args []string) error {
	if gcOpts.margin <= 0 {
		return usagef("--margin %v: must be positive", gcOpts.margin)
	}
	r, err := openStore(ctx, args[0], "casfs gc", false)
	if err != nil {
		return err
	}
	defer r.Close()
	r.SetGCMargin(gcOpts.margin)
	bar := newCountProgress(-1, "gc")
	st, err := r.GC(ctx, versions.GCProgress{Total: bar.setTotal, Done: bar.add})
	bar.done()
	if err != nil {
		return err
	}
	fmt.Printf("%d chunks, %d in use, %d deleted (%s freed)", st.Chunks, st.Live, st.Deleted, humanBytes(st.DeletedBytes))
	if st.Recent > 0 {
		fmt.Printf(", %d unused but kept: stored or reused within the last %v", st.Recent, gcOpts.margin)
	}
	fmt.Println()
	return nil
}
