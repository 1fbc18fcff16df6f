package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/casfs/casfs/versions"
)

// openStore opens the store named on the command line for a command.
func openStore(ctx context.Context, loc, owner string, readOnly bool) (*versions.Repo, error) {
	return versions.Open(ctx, loc, storeOptions(owner, readOnly))
}

// storeOptions are the options of the store named on the command line.
func storeOptions(owner string, readOnly bool) versions.OpenOptions {
	return versions.OpenOptions{Owner: owner, ReadOnly: readOnly, Ceph: versions.CephOptions{
		ConfFile: cephOpts.conf, User: cephOpts.user, Keyring: cephOpts.keyring, OpTimeout: cephOpts.opTimeout,
	}}
}

// cephOpts are the flags of every command that takes a STORE, for
// rados:// stores.
var cephOpts struct {
	conf, user, keyring string
	opTimeout           time.Duration
}

func cephFlags(fs *pflag.FlagSet) {
	fs.StringVar(&cephOpts.conf, "ceph-conf", "", "rados:// stores: the ceph.conf to read (default $CEPH_CONF, then /etc/ceph/ceph.conf)")
	fs.StringVar(&cephOpts.user, "ceph-user", "admin", "rados:// stores: the cephx user, without \"client.\"")
	fs.StringVar(&cephOpts.keyring, "keyring", "", "rados:// stores: the keyring holding the user's key (default: the one ceph.conf names)")
	fs.DurationVar(&cephOpts.opTimeout, "ceph-timeout", 0, "rados:// stores: fail an OSD operation after this long (default: ceph.conf's rados_osd_op_timeout, else 60s)")
}

// progress shows a bar on stderr when it is a terminal and does nothing
// otherwise, so scripts and logs stay clean. total < 0 means unknown.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(total int64, what string) *progress {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	)}
}

// newCountProgress is newProgress for a count of things rather than bytes.
func newCountProgress(total int64, what string) *progress {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
	)}
}

func (p *progress) add(n int64) {
	if p.bar != nil {
		p.bar.Add64(n)
	}
}

func (p *progress) setTotal(n int64) {
	if p.bar != nil {
		p.bar.ChangeMax64(n)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// parseSize reads sizes like 4096, 64K, 1M, 1MiB, 4 MB (powers of two).
func parseSize(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := 1
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional K, M or G suffix", s)
	}
	return v * mult, nil
}

// humanBytes formats n like 1.5 MiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
