package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/pflag"
)

var getOpts struct {
	version string
	output  string
}

func init() {
	register(&command{
		name:  "get",
		args:  "STORE PATH",
		short: "write a version of a file to standard output or a file",
		long: `Writes HEAD (or the version given with --version) of PATH. A file that was
deleted can still be read: without --version its newest version is written.
With -o the output appears only when it is complete.`,
		examples: `  casfs get ~/cas docs/report.txt > report.txt
  casfs get ~/cas docs/report.txt --version 2026-11-22T01-47-03 -o old.txt
  casfs get ~/cas backups/src.tar | tar t`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&getOpts.version, "version", "", "version to read: an ID from 'casfs versions' or a unique prefix of it (default HEAD)")
			fs.StringVarP(&getOpts.output, "output", "o", "", "write to this file instead of standard output")
		},
		minArgs: 2, maxArgs: 2,
		run: runGet,
	})
}

func runGet(ctx context.Context, args []string) error {
	loc, p := args[0], args[1]
	r, err := openStore(ctx, loc, "casfs get", true)
	if err != nil {
		return err
	}
	defer r.Close()
	all, err := history(ctx, r, p)
	if err != nil {
		return err
	}
	fv, err := pickVersion(all, p, getOpts.version)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("%s version %s: %w", p, fv.version.ID, err)
	}
	rec, err := r.LoadRecipe(ctx, fv.version.Recipe)
	if err != nil {
		return fail(err)
	}

	out, tmp := os.Stdout, ""
	if fi, err := os.Stat(getOpts.output); getOpts.output != "" && getOpts.output != "-" && err == nil && !fi.Mode().IsRegular() {
		// A device, FIFO or the like: write to it, never replace it
		// (renaming over /dev/null would be a disaster).
		f, err := os.OpenFile(getOpts.output, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	} else if getOpts.output != "" && getOpts.output != "-" {
		f, err := os.CreateTemp(filepath.Dir(getOpts.output), ".casfs-get-*")
		if err != nil {
			return err
		}
		out, tmp = f, f.Name()
		defer func() {
			if tmp != "" {
				f.Close()
				os.Remove(tmp)
			}
		}()
	}
	bar := newProgress(rec.Size, "get "+filepath.Base(p))
	if tmp != "" {
		// A new regular file gets the version's holes as holes: a sparse
		// disk image comes back sparse, and fast.
		err = r.Materialize(ctx, rec, countingFile{out, bar.add})
	} else {
		w := bufio.NewWriterSize(out, 1<<20)
		err = r.CopyOut(ctx, rec, w, bar.add)
		if err == nil {
			err = w.Flush()
		}
	}
	bar.done()
	if err != nil {
		return fail(err)
	}
	if tmp != "" {
		// Like cp: the file's permission bits less the umask, not
		// CreateTemp's 0600 (a restored script keeps its x bit).
		umask := syscall.Umask(0)
		syscall.Umask(umask)
		if err := out.Chmod(os.FileMode(fv.entry.Mode & 0o777 &^ uint32(umask))); err != nil {
			return err
		}
		if err := out.Sync(); err != nil {
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp, getOpts.output); err != nil {
			return err
		}
		tmp = ""
	}
	return nil
}

// countingFile tells progress how many bytes each write wrote.
type countingFile struct {
	*os.File
	progress func(int64)
}

func (c countingFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.File.WriteAt(p, off)
	c.progress(int64(n))
	return n, err
}
