package versions

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/local"
)

// OpenOptions are how a caller opens a store.
type OpenOptions struct {
	// Owner describes the opener in the store lock, so a second opener is
	// told who holds it ("casfs mount on /mnt/cas").
	Owner string
	// ReadOnly promises not to write. The local store still takes its lock:
	// its metadata database has one writer at a time.
	ReadOnly bool
	// Ceph says how to reach the cluster of a rados:// store.
	Ceph CephOptions
}

// CephOptions say how to reach a Ceph cluster. Zero values mean librados's
// defaults ($CEPH_CONF or /etc/ceph/ceph.conf, client.admin, the keyring
// the config names).
type CephOptions struct {
	ConfFile string
	User     string // without "client."
	Keyring  string
	// OpTimeout bounds every OSD operation (0: the config's, or 60 s).
	OpTimeout time.Duration
}

// Backend opens the store at a location of its scheme ("rados" for
// "rados://pool"). Build-tagged files register backends in Backends.
type Backend struct {
	Init func(ctx context.Context, loc string, cfg chunkstore.Config, opts OpenOptions) error
	Open func(ctx context.Context, loc string, opts OpenOptions) (*Repo, error)
}

// Backends maps a location scheme to its backend. Locations without a
// scheme are local directories.
var Backends = map[string]Backend{}

func splitLocation(loc string) (scheme, rest string) {
	if s, r, ok := strings.Cut(loc, "://"); ok && s != "" && !strings.Contains(s, "/") {
		return s, r
	}
	return "", loc
}

func backendFor(loc string) (Backend, string, error) {
	scheme, rest := splitLocation(loc)
	if scheme == "" {
		return Backend{Init: func(ctx context.Context, dir string, cfg chunkstore.Config, _ OpenOptions) error {
			return initLocal(ctx, dir, cfg)
		}, Open: openLocal}, rest, nil
	}
	b, ok := Backends[scheme]
	if !ok {
		if scheme == "rados" {
			return b, rest, fmt.Errorf("store %q: this casfs was built without Ceph support (build it with `go build -tags ceph ./cmd/casfs`, which needs librados-dev)", loc)
		}
		return b, rest, fmt.Errorf("store %q: unknown store type %q (use a directory path or rados://POOL)", loc, scheme)
	}
	return b, rest, nil
}

// Init creates a new store at loc with cfg.
func Init(ctx context.Context, loc string, cfg chunkstore.Config) error {
	return InitWith(ctx, loc, cfg, OpenOptions{})
}

// InitWith is Init with the options of a remote store (opts.Ceph).
func InitWith(ctx context.Context, loc string, cfg chunkstore.Config, opts OpenOptions) error {
	b, rest, err := backendFor(loc)
	if err != nil {
		return err
	}
	return b.Init(ctx, rest, cfg, opts)
}

// Open opens the store at loc: a local directory, or scheme://... for a
// registered backend.
func Open(ctx context.Context, loc string, opts OpenOptions) (*Repo, error) {
	b, rest, err := backendFor(loc)
	if err != nil {
		return nil, err
	}
	return b.Open(ctx, rest, opts)
}

// metaDBName is the catalog's file in a local store directory.
const metaDBName = "meta.db"

// initLocal makes a local store; one whose config names no layout gets
// packs, the default since format 2.
func initLocal(ctx context.Context, dir string, cfg chunkstore.Config) error {
	if cfg.Layout == "" {
		cfg.Layout = chunkstore.LayoutPacks
	}
	if err := local.Init(dir, cfg); err != nil {
		return err
	}
	// Create the catalog now, so a store is complete from the start.
	r, err := openLocal(ctx, dir, OpenOptions{Owner: "casfs init"})
	if err != nil {
		return err
	}
	return r.Close()
}

// openLocal stacks the local data path: directory store → Encoded
// (compression, framing, verification) → Repo, with the bbolt catalog in the
// same directory under the store's lock.
func openLocal(ctx context.Context, dir string, opts OpenOptions) (*Repo, error) {
	st, err := local.OpenDir(ctx, dir, local.Options{ReadOnly: opts.ReadOnly, Owner: opts.Owner})
	if err != nil {
		return nil, err
	}
	cfg := st.Config()
	enc, err := chunkstore.NewEncoded(st, cfg.Hash, cfg.Compression)
	if err != nil {
		st.Close()
		return nil, err
	}
	cat, err := OpenBolt(filepath.Join(dir, metaDBName), BoltOptions{ReadOnly: opts.ReadOnly})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	r := New(cfg, enc, cat)
	r.localDir, _ = filepath.Abs(dir)
	return r, nil
}

// LocalDir is the directory of a local store, "" for a remote one.
func (r *Repo) LocalDir() string { return r.localDir }
