package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/casfs/casfs/versions"
)

func init() {
	register(&command{
		name:  "put",
		args:  "STORE PATH [FILE|-]",
		short: "store a file's content as a new version of PATH",
		long: `Reads FILE (or standard input when FILE is - or missing) and commits it as
a new version of PATH in the store, making PATH and its parent directories if
they do not exist. Only chunks the store does not hold yet are written.
Prints the path, the new version and its size.`,
		examples: `  casfs put ~/cas docs/report.txt report.txt
  tar c src | casfs put ~/cas backups/src.tar -
  casfs put ~/cas notes.txt < notes.txt`,
		minArgs: 2, maxArgs: 3,
		run: runPut,
	})
}

func runPut(ctx context.Context, args []string) error {
	loc, p := args[0], args[1]
	src := "-"
	if len(args) == 3 {
		src = args[2]
	}
	parts, err := versions.SplitPath(p)
	if err != nil {
		return usagef("%v", err)
	}
	if len(parts) == 0 {
		return usagef("PATH %q names the root directory; give a file path", p)
	}
	var in io.Reader
	mode, mtime, size := uint32(0o644), time.Time{}, int64(-1)
	if src == "-" {
		in = interruptible(ctx, os.Stdin)
	} else {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("%s: is a directory (put stores one file; use casfs mount to copy trees)", src)
		}
		in, mode, mtime, size = f, uint32(fi.Mode().Perm()), fi.ModTime(), fi.Size()
		if fi.Mode().IsRegular() {
			// As a section of a file, a sparse file's holes are skipped,
			// not read.
			in = io.NewSectionReader(f, 0, size)
		}
	}

	r, err := openStore(ctx, loc, "casfs put", false)
	if err != nil {
		return err
	}
	defer r.Close()
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	bar := newProgress(size, "put "+parts[len(parts)-1])
	attr := versions.Attr{Mode: mode, Uid: uid, Gid: gid}
	v, err := r.WritePath(ctx, path.Join(parts...), attr, 0o755, in, mtime, bar.add)
	bar.done()
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%s: %w (nothing committed; `casfs gc %s` frees the space the chunks stored before it took)", p, err, loc)
		}
		return fmt.Errorf("%s: %w (nothing committed)", p, err)
	}
	fmt.Printf("%s\t%s\t%d\n", path.Join(parts...), v.ID, v.Size)
	return nil
}
