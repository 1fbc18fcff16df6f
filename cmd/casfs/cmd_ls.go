package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/casfs/casfs/versions"
)

var lsOpts struct{ deleted bool }

func init() {
	register(&command{
		name:  "ls",
		args:  "STORE [PATH]",
		short: "list a directory of the store",
		long: `Lists PATH (default: the root) like ls -l: mode, size, modification time,
number of versions and name. With --deleted, files deleted from the directory
that still have history are listed too.`,
		examples: `  casfs ls ~/cas
  casfs ls --deleted ~/cas docs`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVarP(&lsOpts.deleted, "deleted", "d", false, "also list deleted entries that keep history")
		},
		minArgs: 1, maxArgs: 2,
		run: runLs,
	})
}

func runLs(ctx context.Context, args []string) error {
	p := "/"
	if len(args) == 2 {
		p = args[1]
	}
	r, err := openStore(ctx, args[0], "casfs ls", true)
	if err != nil {
		return err
	}
	defer r.Close()
	cat := r.Catalog()
	a, err := r.Resolve(ctx, p)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 1, ' ', tabwriter.AlignRight)
	defer tw.Flush()
	line := func(a versions.Attr, name, note string) error {
		nv := 0
		if a.IsRegular() {
			vs, err := cat.Versions(ctx, a.Ino)
			if err != nil {
				return err
			}
			nv = len(vs)
		}
		if a.IsSymlink() {
			name += " -> " + a.Target
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t %s%s\n", modeString(a.Mode), a.Size,
			a.Mtime.Local().Format(time.DateTime), nv, name, note)
		return nil
	}
	if !a.IsDir() {
		return line(a, path.Clean("/" + p)[1:], "")
	}
	ents, err := cat.ReadDir(ctx, a.Ino)
	if err != nil {
		return err
	}
	for _, e := range ents {
		ea, err := cat.GetAttr(ctx, e.Ino)
		if err != nil {
			return err
		}
		if err := line(ea, e.Name, ""); err != nil {
			return err
		}
	}
	if lsOpts.deleted {
		dels, err := cat.Deleted(ctx, a.Ino)
		if err != nil {
			return err
		}
		for _, d := range slices.Backward(dels) {
			da, err := cat.GetAttr(ctx, d.Ino)
			if err != nil {
				continue
			}
			if err := line(da, d.Name, "  (deleted "+d.Deleted.Local().Format(time.DateTime)+")"); err != nil {
				return err
			}
		}
	}
	return nil
}

func modeString(m uint32) string {
	fm := fs.FileMode(m & 0o777)
	switch m & versions.ModeType {
	case versions.ModeDir:
		fm |= fs.ModeDir
	case versions.ModeSymlink:
		fm |= fs.ModeSymlink
	case versions.ModeFifo:
		fm |= fs.ModeNamedPipe
	case versions.ModeSocket:
		fm |= fs.ModeSocket
	case versions.ModeChar:
		fm |= fs.ModeDevice | fs.ModeCharDevice
	case versions.ModeBlock:
		fm |= fs.ModeDevice
	}
	return fm.String()
}
