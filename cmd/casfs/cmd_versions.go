package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

func init() {
	register(&command{
		name:  "versions",
		args:  "STORE PATH",
		short: "list every version of a file, oldest first",
		long: `Lists the versions of PATH, including those of files deleted from PATH
earlier. Each line: version ID (usable with get --version and rm --version),
size, modification time, and HEAD or deleted.`,
		examples: `  casfs versions ~/cas docs/report.txt`,
		minArgs:  2, maxArgs: 2,
		run: runVersions,
	})
}

func runVersions(ctx context.Context, args []string) error {
	r, err := openStore(ctx, args[0], "casfs versions", true)
	if err != nil {
		return err
	}
	defer r.Close()
	all, err := history(ctx, r, args[1])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSIZE\tMODIFIED\t")
	for _, fv := range all {
		note := ""
		switch {
		case fv.head:
			note = "HEAD"
		case !fv.entry.Deleted.IsZero():
			note = "deleted " + fv.entry.Deleted.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", fv.version.ID, fv.version.Size,
			fv.version.Mtime.Local().Format(time.DateTime), note)
	}
	return tw.Flush()
}
