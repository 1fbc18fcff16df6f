//go:build ceph

package radosrepo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	librados "github.com/ceph/go-ceph/rados"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/rados"
	"github.com/casfs/casfs/versions"
)

func init() {
	versions.Backends["rados"] = versions.Backend{Init: Init, Open: Open}
}

// ParseLocation turns the part of a rados:// location after the scheme,
// POOL or POOL/NAMESPACE, and the Ceph options into connection options.
func ParseLocation(loc string, o versions.CephOptions) (rados.Options, error) {
	pool, ns, _ := strings.Cut(loc, "/")
	if pool == "" {
		return rados.Options{}, fmt.Errorf("store rados://%s: no pool (use rados://POOL or rados://POOL/NAMESPACE)", loc)
	}
	if strings.Contains(ns, "/") {
		return rados.Options{}, fmt.Errorf("store rados://%s: a namespace cannot hold '/' (use rados://POOL or rados://POOL/NAMESPACE)", loc)
	}
	return rados.Options{
		ConfFile: o.ConfFile, User: o.User, Keyring: o.Keyring,
		Pool: pool, Namespace: ns, OpTimeout: o.OpTimeout,
	}, nil
}

// Init makes a new store at loc (POOL or POOL/NAMESPACE): the catalog
// object with an empty catalog, then the config object, which is what makes
// the namespace a store. An interrupted init can be run again; an init of an
// existing store fails (rados.ErrExists) and changes nothing.
func Init(ctx context.Context, loc string, cfg chunkstore.Config, opts versions.OpenOptions) error {
	ro, err := ParseLocation(loc, opts.Ceph)
	if err != nil {
		return err
	}
	c, err := rados.Connect(ctx, ro)
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.WithIOContext(ctx, c.Namespace(), func(io *librados.IOContext) error {
		op := librados.CreateWriteOp()
		defer op.Release()
		op.Create(librados.CreateIdempotent)
		return op.Operate(io, catalogObject, librados.OperationNoFlag)
	})
	if err != nil {
		return fmt.Errorf("init store %s: create %s: %w", c.Location(), catalogObject, capError(c, err))
	}
	if _, err := versions.NewKVCatalog(ctx, newOmapKV(c), versions.KVOptions{}); err != nil {
		return fmt.Errorf("init store %s: %w", c.Location(), err)
	}
	return rados.Init(ctx, c, cfg)
}

// Open opens the store at loc: the RADOS chunk store, Encoded over it
// (compression, framing, verification), and the catalog in the pool. A
// writable open first checks that the user may write, so that missing
// capabilities are an error now rather than at the first close of a file.
func Open(ctx context.Context, loc string, opts versions.OpenOptions) (*versions.Repo, error) {
	ro, err := ParseLocation(loc, opts.Ceph)
	if err != nil {
		return nil, err
	}
	st, err := rados.Open(ctx, ro)
	if err != nil {
		return nil, err
	}
	r, err := open(ctx, st, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	return r, nil
}

func open(ctx context.Context, st *rados.Store, opts versions.OpenOptions) (*versions.Repo, error) {
	c := st.Conn()
	if !opts.ReadOnly {
		if err := probeWrite(ctx, c, opts.Owner); err != nil {
			return nil, fmt.Errorf("open store %s: %w", c.Location(), err)
		}
	}
	cfg := st.Config()
	enc, err := chunkstore.NewEncoded(st, cfg.Hash, cfg.Compression)
	if err != nil {
		return nil, err
	}
	cat, err := versions.NewKVCatalog(ctx, newOmapKV(c), versions.KVOptions{ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", c.Location(), err)
	}
	return versions.New(cfg, enc, cat), nil
}

// probeWrite sets an attribute on the config object (who opened the store
// for writing, and when: useful to an operator, harmless to casfs).
func probeWrite(ctx context.Context, c *rados.Conn, owner string) error {
	val := fmt.Sprintf("%s at %s", owner, time.Now().UTC().Format(time.RFC3339))
	err := c.WithIOContext(ctx, c.Namespace(), func(io *librados.IOContext) error {
		op := librados.CreateWriteOp()
		defer op.Release()
		op.AssertExists()
		op.SetXattr("casfs.last-writer", []byte(val))
		return op.Operate(io, rados.ConfigObject, librados.OperationNoFlag)
	})
	if err != nil {
		return fmt.Errorf("check that client.%s may write: %w", c.Options().User, capError(c, err))
	}
	return nil
}

// capError explains a refused operation.
func capError(c *rados.Conn, err error) error {
	switch rados.Errno(err) {
	case syscall.EPERM, syscall.EACCES:
		return fmt.Errorf("client.%s lacks the capabilities casfs needs on pool %s (give it osd 'allow rw pool=%s'): %w",
			c.Options().User, c.Options().Pool, c.Options().Pool, err)
	}
	if errors.Is(err, librados.ErrNotFound) {
		return fmt.Errorf("%w (not a casfs store?)", err)
	}
	return err
}
