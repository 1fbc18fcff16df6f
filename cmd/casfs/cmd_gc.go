package main

import (
	"context"
	"fmt"

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
deleted: run fsck.`,
		examples: `  casfs rm ~/cas scratch/big.iso && casfs gc ~/cas`,
		minArgs:  1, maxArgs: 1,
		run: runGC,
	})
}

func runGC(ctx context.Context, args []string) error {
	r, err := openStore(ctx, args[0], "casfs gc", false)
	if err != nil {
		return err
	}
	defer r.Close()
	bar := newCountProgress(-1, "gc")
	st, err := r.GC(ctx, versions.GCProgress{Total: bar.setTotal, Done: bar.add})
	bar.done()
	if err != nil {
		return err
	}
	fmt.Printf("%d chunks, %d in use, %d deleted (%s freed)\n", st.Chunks, st.Live, st.Deleted, humanBytes(st.DeletedBytes))
	return nil
}
