package main

import (
	"context"
	"fmt"
)

func init() {
	register(&command{
		name:  "stats",
		args:  "STORE",
		short: "show how much the store holds and how well it deduplicates",
		long: `Logical bytes are the sizes of all versions added up (what plain copies
would take); unique bytes are the distinct chunks they use; stored bytes are
what the store keeps after compression. Dedup ratio = logical / unique,
compression ratio = unique / stored.`,
		examples: `  casfs stats ~/cas`,
		minArgs:  1, maxArgs: 1,
		run: runStats,
	})
}

func runStats(ctx context.Context, args []string) error {
	r, err := openStore(ctx, args[0], "casfs stats", true)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("files:             %d\n", st.Files)
	fmt.Printf("versions:          %d\n", st.Versions)
	fmt.Printf("logical bytes:     %d (%s)\n", st.Logical, humanBytes(st.Logical))
	fmt.Printf("unique bytes:      %d (%s)\n", st.Unique, humanBytes(st.Unique))
	fmt.Printf("stored bytes:      %d (%s)\n", st.Stored, humanBytes(st.Stored))
	fmt.Printf("chunks:            %d\n", st.Chunks)
	fmt.Printf("dedup ratio:       %.2f\n", st.DedupRatio())
	fmt.Printf("compression ratio: %.2f\n", st.CompressionRatio())
	return nil
}
