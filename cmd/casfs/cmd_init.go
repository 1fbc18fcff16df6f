package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/versions"
)

var initOpts struct {
	chunker     string
	chunkSize   string
	minSize     string
	maxSize     string
	compression string
	hash        string
	layout      string
}

func init() {
	register(&command{
		name:  "init",
		args:  "STORE",
		short: "create a new store",
		long: `Creates a store in a directory (made if missing; it must be empty).
Chunking, hashing and compression are fixed at init and recorded in the
store's config. STORE is a directory, or rados://POOL[/NAMESPACE] for a store
in a Ceph pool (the pool must exist).

The default chunker is FastCDC (content-defined; nominal average 640 KiB,
which gives chunks of ~0.75 MiB on real data): an insertion
near the start of a file re-stores only the chunks around it. --chunker fixed
cuts fixed 4 MiB chunks, as casfs's ancestor did.

A local store keeps its chunks in large pack files (--layout packs, the
default): storing a chunk appends to a pack, and a file's chunks lie one
after another on disk. --layout files keeps one file per chunk, as stores
made before format 2 do (older casfs can read only those).`,
		examples: `  casfs init ~/cas
  casfs init --chunker fixed --chunk-size 4M /srv/cas
  casfs init --chunk-size 512K --compression none /srv/cas-media`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&initOpts.chunker, "chunker", "fastcdc", "chunker: fastcdc or fixed")
			fs.StringVar(&initOpts.chunkSize, "chunk-size", "", "average chunk size (fastcdc, default 640K) or chunk size (fixed, default 4M)")
			fs.StringVar(&initOpts.minSize, "min-size", "", "fastcdc minimum chunk size (default avg/4)")
			fs.StringVar(&initOpts.maxSize, "max-size", "", "fastcdc maximum chunk size (default avg*4)")
			fs.StringVar(&initOpts.compression, "compression", "zstd", "chunk compression: zstd or none")
			fs.StringVar(&initOpts.hash, "hash", string(chunkstore.HashBLAKE3), "chunk fingerprint: blake3-256 or sha256")
			fs.StringVar(&initOpts.layout, "layout", chunkstore.LayoutPacks, "local store layout: packs or files (ignored for rados://)")
		},
		minArgs: 1, maxArgs: 1,
		run: runInit,
	})
}

func runInit(ctx context.Context, args []string) error {
	cfg := chunkstore.DefaultConfig()
	cfg.Hash = chunkstore.Hash(initOpts.hash)
	cfg.Compression = initOpts.compression
	size := func(s string, def int) (int, error) {
		if s == "" {
			return def, nil
		}
		return parseSize(s)
	}
	switch initOpts.chunker {
	case "fastcdc":
		avg, err := size(initOpts.chunkSize, chunkstore.DefaultFastCDCAvg)
		if err != nil {
			return usagef("--chunk-size: %v", err)
		}
		lo, err := size(initOpts.minSize, avg/4)
		if err != nil {
			return usagef("--min-size: %v", err)
		}
		hi, err := size(initOpts.maxSize, avg*4)
		if err != nil {
			return usagef("--max-size: %v", err)
		}
		cfg.Chunker = chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: lo, Avg: avg, Max: hi}
	case "fixed":
		n, err := size(initOpts.chunkSize, chunkstore.DefaultFixedSize)
		if err != nil {
			return usagef("--chunk-size: %v", err)
		}
		cfg.Chunker = chunkstore.ChunkerConfig{Algorithm: "fixed", Size: n}
	default:
		return usagef("--chunker %q: want fastcdc or fixed", initOpts.chunker)
	}
	switch initOpts.layout {
	case chunkstore.LayoutPacks, chunkstore.LayoutFiles:
		if !strings.Contains(args[0], "://") {
			cfg.Layout = initOpts.layout
			cfg.Format = chunkstore.FormatFor(cfg)
		}
	default:
		return usagef("--layout %q: want packs or files", initOpts.layout)
	}
	cfg.ID = "to-be-assigned" // Validate wants one; the store assigns the real id
	if err := cfg.Validate(); err != nil {
		// Said of a store's config, "unknown store format" would mislead
		// here: it is a flag's value that casfs does not know.
		if msg, ok := strings.CutPrefix(err.Error(), chunkstore.ErrUnknownFormat.Error()+": "); ok {
			return usagef("unknown %s", msg)
		}
		return usagef("%v", err)
	}
	cfg.ID = ""
	if err := versions.InitWith(ctx, args[0], cfg, storeOptions("casfs init", false)); err != nil {
		return err
	}
	fmt.Printf("created casfs store at %s (%s chunks, %s, %s)\n", args[0], describeChunker(cfg.Chunker), cfg.Hash, cfg.Compression)
	return nil
}

func describeChunker(c chunkstore.ChunkerConfig) string {
	if c.Algorithm == "fixed" {
		return "fixed " + humanBytes(int64(c.Size))
	}
	return fmt.Sprintf("fastcdc %s/%s/%s", humanBytes(int64(c.Min)), humanBytes(int64(c.Avg)), humanBytes(int64(c.Max)))
}
