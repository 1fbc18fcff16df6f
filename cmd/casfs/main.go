// Command casfs is the deduplicating, versioning filesystem: it mounts a
// store and works on it from the command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

// command is one subcommand. Each lives in its own cmd_*.go file with its
// options, flags and run function.
type command struct {
	name     string
	args     string // usage after the name, e.g. "STORE PATH [FILE|-]"
	short    string
	long     string
	examples string
	flags    func(fs *pflag.FlagSet)
	// run gets the positional arguments after flag parsing.
	run     func(ctx context.Context, args []string) error
	minArgs int
	maxArgs int // -1: any
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func usage(w io.Writer) {
	fmt.Fprintf(w, `casfs: a deduplicating filesystem that keeps every version of every file.

Usage:
  casfs COMMAND [OPTIONS] ARGS...

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].short)
	}
	fmt.Fprintf(w, `
STORE is a directory (the local store), or rados://POOL[/NAMESPACE] for a
store in a Ceph RADOS pool (with --ceph-conf, --ceph-user, --keyring; needs a
casfs built with -tags ceph).
Run 'casfs COMMAND --help' for a command's options and examples.

Exit status: 0 success, 1 error, 2 usage error, 3 damage found (fsck) or
corrupt data met, 4 store in use by another casfs process.
`)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	if len(argv) == 0 {
		usage(os.Stderr)
		return exitUsage
	}
	switch argv[0] {
	case "-h", "--help", "help":
		if len(argv) > 1 {
			if c, ok := commands[argv[1]]; ok {
				printHelp(os.Stdout, c, newFlagSet(c))
				return exitOK
			}
		}
		usage(os.Stdout)
		return exitOK
	case "--version", "version":
		fmt.Println("casfs", version)
		return exitOK
	}
	c, ok := commands[argv[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "casfs: unknown command %q\n\n", argv[0])
		usage(os.Stderr)
		return exitUsage
	}
	fs := newFlagSet(c)
	err := fs.Parse(argv[1:])
	// pflag returns ErrHelp only when no "help" flag is defined; ours is,
	// so -h/--help has to be looked at here, before the arguments are
	// counted (or, worse, the command run).
	if help, _ := fs.GetBool("help"); help || errors.Is(err, pflag.ErrHelp) {
		printHelp(os.Stdout, c, fs)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "casfs %s: %v\n\n", c.name, err)
		printUsage(os.Stderr, c, fs)
		return exitUsage
	}
	args := fs.Args()
	if len(args) < c.minArgs || (c.maxArgs >= 0 && len(args) > c.maxArgs) {
		fmt.Fprintf(os.Stderr, "casfs %s: wrong number of arguments\n\n", c.name)
		printUsage(os.Stderr, c, fs)
		return exitUsage
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})))

	if p := os.Getenv("CASFS_CPUPROFILE"); p != "" { // for benchmarking casfs itself
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if p := os.Getenv("CASFS_TRACE"); p != "" { // runtime/trace, likewise
		if f, err := os.Create(p); err == nil {
			trace.Start(f)
			defer trace.Stop()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = c.run(ctx, args)
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "casfs %s: %v\n\n", c.name, err)
		printUsage(os.Stderr, c, fs)
		return exitUsage
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "casfs %s: interrupted: %v\n", c.name, err)
		return exitInterrupted
	}
	if !errors.Is(err, errSilent) {
		fmt.Fprintf(os.Stderr, "casfs %s: %v\n", c.name, err)
	}
	return exitCode(err)
}

var logLevel = new(slog.LevelVar)

const version = "0.1.0-dev"

func newFlagSet(c *command) *pflag.FlagSet {
	fs := pflag.NewFlagSet("casfs "+c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed by run, with usage
	fs.SortFlags = false
	if c.flags != nil {
		c.flags(fs)
	}
	if strings.HasPrefix(c.args, "STORE") {
		cephFlags(fs)
	}
	fs.BoolP("help", "h", false, "show this help")
	return fs
}

func printUsage(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: casfs %s [OPTIONS] %s\n", c.name, c.args)
	if u := fs.FlagUsages(); u != "" {
		fmt.Fprintf(w, "\nOptions:\n%s", u)
	}
	fmt.Fprintf(w, "\nRun 'casfs %s --help' for more.\n", c.name)
}

func printHelp(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "casfs %s: %s\n\nUsage: casfs %s [OPTIONS] %s\n", c.name, c.short, c.name, c.args)
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.long))
	}
	if u := fs.FlagUsages(); u != "" {
		fmt.Fprintf(w, "\nOptions:\n%s", u)
	}
	if c.examples != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(c.examples, "\n"))
	}
}

// usageError is an error in how casfs was called: it is printed with usage
// and exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// errSilent marks an error already reported (fsck's problems).
var errSilent = errors.New("reported")
