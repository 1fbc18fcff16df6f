package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
)

var rmOpts struct {
	version   string
	recursive bool
}

func init() {
	register(&command{
		name:  "rm",
		args:  "STORE PATH",
		short: "remove a file with all its versions, or one version",
		long: `Without --version, removes PATH and its whole history, including files
deleted from PATH earlier; a directory needs --recursive. With --version,
removes that one version (if it was HEAD, the version before becomes HEAD).
Space is reclaimed by the next 'casfs gc'.`,
		examples: `  casfs rm ~/cas docs/old-report.txt
  casfs rm ~/cas docs/report.txt --version 2026-11-22T01-47-03.123456789Z
  casfs rm -r ~/cas scratch`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&rmOpts.version, "version", "", "remove only this version (ID or unique prefix)")
			fs.BoolVarP(&rmOpts.recursive, "recursive", "r", false, "remove a directory and everything below it")
		},
		minArgs: 2, maxArgs: 2,
		run: runRm,
	})
}

func runRm(ctx context.Context, args []string) error {
	loc, p := args[0], args[1]
	r, err := openStore(ctx, loc, "casfs rm", false)
	if err != nil {
		return err
	}
	defer r.Close()
	cat := r.Catalog()
	if rmOpts.version != "" {
		all, err := history(ctx, r, p)
		if err != nil {
			return err
		}
		fv, err := pickVersion(all, p, rmOpts.version)
		if err != nil {
			return err
		}
		if err := cat.RemoveVersion(ctx, fv.entry.Ino, fv.version.ID); err != nil {
			return fmt.Errorf("%s version %s: %w", p, fv.version.ID, err)
		}
		fmt.Printf("removed %s version %s\n", p, fv.version.ID)
		return nil
	}
	ents, err := r.Lookup(ctx, p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() && !rmOpts.recursive {
			return fmt.Errorf("%s: is a directory (use --recursive to remove it and everything below)", p)
		}
	}
	for _, e := range ents {
		if err := cat.Purge(ctx, e.Ino); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	fmt.Printf("removed %s\n", p)
	return nil
}
