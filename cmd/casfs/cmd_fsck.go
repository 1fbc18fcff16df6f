package main

import (
	"context"
	"fmt"
	"os"

	"github.com/casfs/casfs/versions"
)

func init() {
	register(&command{
		name:  "fsck",
		args:  "STORE",
		short: "verify every version: recipes decode, chunks exist and match their IDs",
		long: `Reads every version's recipe and every chunk it references (each distinct
chunk once), checking each against its fingerprint. Each problem is printed on
its own line with the file, the version and the chunk. Exits 3 if any problem
was found, 0 if none.`,
		examples: `  casfs fsck ~/cas && echo store is intact`,
		minArgs:  1, maxArgs: 1,
		run: runFsck,
	})
}

func runFsck(ctx context.Context, args []string) error {
	r, err := openStore(ctx, args[0], "casfs fsck", true)
	if err != nil {
		return err
	}
	defer r.Close()
	bar := newProgress(-1, "fsck")
	st, err := r.Fsck(ctx, func(p versions.Problem) {
		fmt.Fprintln(os.Stdout, "error:", p)
	}, bar.add)
	bar.done()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "checked %d versions, %d chunks (%s): %d problems\n",
		st.Versions, st.Chunks, humanBytes(st.Bytes), st.Problems)
	if st.Problems > 0 {
		return fmt.Errorf("%w: %d problems", errDamaged, st.Problems)
	}
	return nil
}
