package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/casfs/casfs/chunkstore"
)

// Names in the store directory; see the package documentation.
const (
	configName = "config"
	lockName   = "lock"
	chunksName = "chunks"
	tmpName    = "tmp"
)

const (
	dirMode  = 0o700
	fileMode = 0o600
)

var (
	// ErrNoStore is matched by Open's error for a directory that is not a
	// casfs store: missing, or without a config file.
	ErrNoStore = errors.New("no casfs store")
	// ErrExists is matched by Init's error for a directory that already
	// holds a store.
	ErrExists = errors.New("already a casfs store")
	// ErrReadOnly is matched by errors of Put and Delete on a store opened
	// with Options.ReadOnly.
	ErrReadOnly = errors.New("store is opened read-only")
)

// Options tune Open.
type Options struct {
	// ReadOnly refuses Put and Delete and leaves tmp/ alone. The store is
	// still locked exclusively (see the package documentation).
	ReadOnly bool
	// Owner says, in free text, who holds the store, for the error another
	// process gets when it tries to open it: e.g. "casfs mount on /mnt/cas".
	Owner string
}

// Store is a chunkstore.Store in a local directory. Its methods are safe for
// concurrent use.
type Store struct {
	dir      string // absolute
	cfg      chunkstore.Config
	readOnly bool
	lock     *os.File // holds the flock; nil after Close

	batcher // chunks put but not yet synced, and Sync's state
	drops   dropRing

	// shards has a bit per shard (the ID's first two bytes) that this
	// Store has made or found, so that Put makes each at most once.
	shards [1 << 16 / 64]atomic.Uint64
}

var _ chunkstore.Store = (*Store)(nil)

// Init makes dir a new store with config cfg, assigning cfg.ID if it is
// empty. dir is created if needed; an existing dir must be empty. It refuses
// a dir that already holds a store (ErrExists).
func Init(dir string, cfg chunkstore.Config) error {
	if cfg.ID == "" {
		cfg.ID = newStoreID()
	}
	if f := chunkstore.FormatFor(cfg); cfg.Format < f {
		cfg.Format = f
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	dir = abs
	cfgBytes, err := chunkstore.MarshalConfig(cfg)
	if err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}

	created := false
	switch err := os.Mkdir(dir, dirMode); {
	case err == nil:
		created = true
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return fmt.Errorf("init store %s: %w", dir, err)
		}
		created = true
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	if err := checkEmpty(dir); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	dataDir := chunksName
	if cfg.Layout == chunkstore.LayoutPacks {
		dataDir = packsName
	}
	for _, name := range []string{dataDir, tmpName} {
		if err := os.Mkdir(filepath.Join(dir, name), dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("init store %s: %w", dir, err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	lock.Close()

	// The config goes in last, since it is what makes dir a store. Link,
	// not rename, so that of two racing Inits exactly one wins.
	tmp, err := writeTemp(filepath.Join(dir, tmpName), "config-*", cfgBytes, true)
	if err != nil {
		return fmt.Errorf("init store %s: write config: %w", dir, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, filepath.Join(dir, configName)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("init store %s: %w", dir, ErrExists)
		}
		return fmt.Errorf("init store %s: write config: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("init store %s: %w", dir, err)
	}
	if created {
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return fmt.Errorf("init store %s: %w", dir, err)
		}
	}
	return nil
}

// checkEmpty refuses a directory that holds a store or anything else, except
// the skeleton an interrupted Init leaves (empty chunks/ and tmp/, lock), so
// that Init can simply be run again.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == configName {
			return ErrExists
		}
	}
	for _, e := range entries {
		ok := false
		switch e.Name() {
		case chunksName, tmpName, packsName:
			if e.IsDir() {
				sub, err := os.ReadDir(filepath.Join(dir, e.Name()))
				ok = err == nil && len(sub) == 0
			}
		case lockName:
			ok = e.Type().IsRegular()
		}
		if !ok {
			return fmt.Errorf("directory is not empty (it has %q) and is not a casfs store", e.Name())
		}
	}
	return nil
}

// newStoreID returns a random store ID: 16 bytes, in hex.
func newStoreID() string {
	var b [16]byte
	// crypto/rand.Read never fails; it aborts the program if the kernel
	// cannot supply randomness.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DirStore is a store in a local directory, of either layout.
type DirStore interface {
	chunkstore.Store
	chunkstore.BufferedGetter
	// Config returns the store's config, as Init recorded it.
	Config() chunkstore.Config
	// Dir returns the store's directory, as an absolute path.
	Dir() string
}

// OpenDir opens the store in dir, of whichever layout its config names,
// and locks it for this process until Close.
func OpenDir(ctx context.Context, dir string, opts Options) (DirStore, error) {
	dir, cfg, lock, err := openLocked(ctx, dir, opts)
	if err != nil {
		return nil, err
	}
	if cfg.Layout == chunkstore.LayoutPacks {
		s, err := openPacks(dir, cfg, lock, opts)
		if err != nil {
			unlockStore(lock)
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		return s, nil
	}
	return openFiles(dir, cfg, lock, opts)
}

// Open opens the store in dir, which must have the files layout, and locks
// it for this process until Close.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	dir, cfg, lock, err := openLocked(ctx, dir, opts)
	if err != nil {
		return nil, err
	}
	if cfg.Layout == chunkstore.LayoutPacks {
		unlockStore(lock)
		return nil, fmt.Errorf("open store %s: it has the %s layout (use OpenDir)", dir, cfg.Layout)
	}
	return openFiles(dir, cfg, lock, opts)
}

// openLocked reads and checks the config of the store in dir and takes its
// lock; it returns dir made absolute.
func openLocked(ctx context.Context, dir string, opts Options) (string, chunkstore.Config, *os.File, error) {
	var cfg chunkstore.Config
	if err := ctx.Err(); err != nil {
		return "", cfg, nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", cfg, nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	dir = abs
	cfgPath := filepath.Join(dir, configName)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return "", cfg, nil, noStore(dir, err)
	}
	cfg, err = chunkstore.UnmarshalConfig(b)
	if err != nil {
		return "", cfg, nil, fmt.Errorf("open store %s: config %s: %w", dir, cfgPath, err)
	}
	lock, err := lockStore(dir, filepath.Join(dir, lockName), opts)
	if err != nil {
		return "", cfg, nil, err
	}
	return dir, cfg, lock, nil
}

func openFiles(dir string, cfg chunkstore.Config, lock *os.File, opts Options) (*Store, error) {
	s := &Store{dir: dir, cfg: cfg, readOnly: opts.ReadOnly, lock: lock, batcher: newBatcher()}
	if !opts.ReadOnly {
		if err := s.prepare(); err != nil {
			unlockStore(lock)
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	return s, nil
}

// noStore explains why dir is not a store, given the error of reading its
// config.
func noStore(dir string, err error) error {
	hint := "create one with `casfs init " + shellQuote(dir) + "`"
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		why := "it has no config file"
		switch st, serr := os.Stat(dir); {
		case serr != nil:
			why = "the directory does not exist"
		case !st.IsDir():
			// init would fail on it too: name another path.
			why = "it is not a directory"
			hint = "a store is a directory; give its path, or a new one to `casfs init`"
		}
		return fmt.Errorf("%w at %s: %s (%s)", ErrNoStore, dir, why, hint)
	}
	return fmt.Errorf("open store %s: %w", dir, err)
}

// shellQuote quotes s for a POSIX shell if it needs it, so that a hint to
// run a command can be pasted as it is.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"$`\\!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// prepare makes sure the working directories exist and removes temp files
// left by a crash. Only called with the lock held.
func (s *Store) prepare() error {
	for _, name := range []string{chunksName, tmpName} {
		if err := os.Mkdir(filepath.Join(s.dir, name), dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	tmpDir := filepath.Join(s.dir, tmpName)
	entries, err := os.ReadDir(tmpDir)
	if err != nil {
		return fmt.Errorf("sweep temp files: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmpDir, e.Name())); err != nil {
			return fmt.Errorf("sweep temp files: %w", err)
		}
	}
	return nil
}

// Config returns the store's config, as Init recorded it.
func (s *Store) Config() chunkstore.Config { return s.cfg }

// Dir returns the store's directory, as an absolute path.
func (s *Store) Dir() string { return s.dir }

// path returns the file name of chunk id.
func (s *Store) path(id chunkstore.ID) string {
	h := id.String()
	return filepath.Join(s.dir, chunksName, h[0:2], h[2:4], h)
}

// Put writes data to a temp file and records it as pending: Has, Get and
// List see it at once, Sync makes it durable and gives it its chunk name. An
// id already present, under its name or pending, is left as it is. When
// many chunks are pending, Put syncs them itself (see maxPending). Chunks
// written a while ago are dropped from the page cache (see dropLater).
func (s *Store) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("store %s: put chunk %s: %w", s.dir, id.Str(), ErrReadOnly)
	}
	// Pending first, then the name: Sync renames a chunk and takes it out
	// of the pending set in one step, so a chunk can slip from the first
	// look to the second but not past both.
	if _, ok := s.lookupPending(id); ok {
		return nil
	}
	switch _, err := os.Lstat(s.path(id)); {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store %s: put chunk %s: %w", s.dir, id.Str(), err)
	}
	// The shard is made now, in parallel with other Puts, so that Sync
	// only has renames to do; it becomes durable with them.
	if err := s.ensureShard(id); err != nil {
		return fmt.Errorf("store %s: put chunk %s: %w", s.dir, id.Str(), err)
	}
	tmp, err := writeTemp(filepath.Join(s.dir, tmpName), id.Str()+"-*", data, false)
	if err != nil {
		return fmt.Errorf("store %s: put chunk %s: %w", s.dir, id.Str(), err)
	}
	added, n := s.addPending(id, pendingChunk{tmp: tmp, size: int64(len(data))})
	if !added {
		// A concurrent Put of the same chunk won; its file is as good.
		os.Remove(tmp)
	} else {
		s.dropLater(id)
		s.kickWriteback(len(data))
	}
	if n >= maxPending {
		return s.syncSoon(ctx)
	}
	return nil
}

// writeData writes a chunk's bytes to its temp file. It is a variable so
// tests can make the disk look full.
var writeData = func(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}

// writeTemp writes data to a new file in dir and returns its name. With
// durable it fsyncs the file; without, it only starts its writeback. On
// error it leaves no file behind.
func writeTemp(dir, pattern string, data []byte, durable bool) (name string, err error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	err = writeData(f, data)
	if err == nil {
		if durable {
			err = f.Sync()
		} else {
			startWriteback(f)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// ensureShard makes sure the shard directories of id exist.
func (s *Store) ensureShard(id chunkstore.ID) error {
	n := int(id[0])<<8 | int(id[1])
	word, bit := &s.shards[n/64], uint64(1)<<(n%64)
	if word.Load()&bit != 0 {
		return nil
	}
	if err := s.mkShard(id); err != nil {
		return err
	}
	word.Or(bit)
	return nil
}

// mkShard creates the two shard directories of id if they do not exist.
func (s *Store) mkShard(id chunkstore.ID) error {
	h := id.String()
	d := filepath.Join(s.dir, chunksName)
	for _, name := range []string{h[0:2], h[2:4]} {
		d = filepath.Join(d, name)
		// A concurrent Put may have made it: fine.
		if err := os.Mkdir(d, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory, making the names in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get returns the bytes stored under id.
func (s *Store) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if pc, ok := s.lookupPending(id); ok {
		b, err := os.ReadFile(pc.tmp)
		if err == nil {
			return b, nil
		}
		// Renamed by a Sync or removed by a Delete since: read it
		// under its name, or report it missing.
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s: get chunk %s: %w", s.dir, id.Str(), err)
		}
	}
	b, err := os.ReadFile(s.path(id))
	if err != nil {
		return nil, s.getError(id, err)
	}
	return b, nil
}

// getError is the error of a Get of id that failed with err.
func (s *Store) getError(id chunkstore.ID, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return chunkstore.NotFound(id)
	}
	return fmt.Errorf("store %s: get chunk %s: %w", s.dir, id.Str(), err)
}

var _ chunkstore.BufferedGetter = (*Store)(nil)

// GetBuffered reads chunk id into a buffer from bufs, sized by the file's
// length, with one read(2).
func (s *Store) GetBuffered(ctx context.Context, id chunkstore.ID, bufs chunkstore.Buffers) (data, buf []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if _, ok := s.lookupPending(id); ok {
		// Put and not synced yet: in a temp file, read as Get does.
		data, err := s.Get(ctx, id)
		return data, nil, err
	}
	f, err := os.Open(s.path(id))
	if err != nil {
		return nil, nil, s.getError(id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, s.getError(id, err)
	}
	buf = bufs.Get(int(fi.Size()))
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		// A file shorter than its length a moment ago is returned as it
		// is, like ReadFile would; whoever decodes it judges it.
		bufs.Put(buf)
		return nil, nil, s.getError(id, err)
	}
	return buf[:n], buf, nil
}

// Has reports whether id is stored, pending or under its name.
func (s *Store) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if _, ok := s.lookupPending(id); ok {
		return true, nil
	}
	_, err := os.Lstat(s.path(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("store %s: has chunk %s: %w", s.dir, id.Str(), err)
}

// Delete removes id, pending or under its name. Shard directories stay,
// empty or not: removing them would race with a Sync renaming into them.
func (s *Store) Delete(ctx context.Context, id chunkstore.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("store %s: delete chunk %s: %w", s.dir, id.Str(), ErrReadOnly)
	}
	s.mu.Lock()
	pc, pending := s.pending[id]
	delete(s.pending, id)
	s.mu.Unlock()
	if pending {
		// Out of the set, the temp file is no one's: a Sync skips it.
		if err := os.Remove(pc.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store %s: delete chunk %s: %w", s.dir, id.Str(), err)
		}
	}
	// Also under its name: two racing Puts of one chunk can leave it both
	// named and pending.
	if err := os.Remove(s.path(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if pending {
				return nil
			}
			return chunkstore.NotFound(id)
		}
		return fmt.Errorf("store %s: delete chunk %s: %w", s.dir, id.Str(), err)
	}
	return nil
}

// List reports the pending chunks, then walks the shards. Names that are
// not chunk IDs in their right shard (stray files, editor backups) are
// skipped, not reported as errors, so that garbage collection never acts on
// them.
func (s *Store) List(ctx context.Context, fn func(chunkstore.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Pending chunks as they were before the walk, reported first and
	// skipped in the walk: a Sync during the walk may rename one into a
	// shard already walked, or into one still ahead.
	s.mu.Lock()
	pending := make([]chunkstore.Info, 0, len(s.pending))
	for id, pc := range s.pending {
		pending = append(pending, chunkstore.Info{ID: id, Size: pc.size})
	}
	s.mu.Unlock()
	seen := make(map[chunkstore.ID]bool, len(pending))
	for _, info := range pending {
		seen[info.ID] = true
		if err := fn(info); err != nil {
			return err
		}
	}
	root := filepath.Join(s.dir, chunksName)
	level1, err := readDir(root)
	if err != nil {
		return fmt.Errorf("store %s: list: %w", s.dir, err)
	}
	for _, d1 := range level1 {
		if !isShard(d1) {
			continue
		}
		level2, err := readDir(filepath.Join(root, d1.Name()))
		if err != nil {
			return fmt.Errorf("store %s: list: %w", s.dir, err)
		}
		for _, d2 := range level2 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !isShard(d2) {
				continue
			}
			prefix := d1.Name() + d2.Name()
			if err := s.listShard(filepath.Join(root, d1.Name(), d2.Name()), prefix, seen, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) listShard(dir, prefix string, seen map[chunkstore.ID]bool, fn func(chunkstore.Info) error) error {
	files, err := readDir(dir)
	if err != nil {
		return fmt.Errorf("store %s: list: %w", s.dir, err)
	}
	for _, f := range files {
		name := f.Name()
		if !f.Type().IsRegular() || len(name) != 2*chunkstore.IDSize || name[:4] != prefix {
			continue
		}
		id, err := chunkstore.ParseID(name)
		if err != nil || id.String() != name || seen[id] {
			continue
		}
		info, err := f.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we listed
		}
		if err != nil {
			return fmt.Errorf("store %s: list: %w", s.dir, err)
		}
		if err := fn(chunkstore.Info{ID: id, Size: info.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// readDir is os.ReadDir, except that a directory that does not exist is
// empty: chunks/ of a store opened read-only may lack shards.
func readDir(dir string) ([]os.DirEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

// isShard reports whether e is a shard directory: two lower-case hex digits.
func isShard(e os.DirEntry) bool {
	n := e.Name()
	return e.IsDir() && len(n) == 2 && isLowerHex(n[0]) && isLowerHex(n[1])
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// Properties describes the store.
func (s *Store) Properties() chunkstore.Properties { return properties(s.dir) }

// properties describes a local store in dir, of either layout.
func properties(dir string) chunkstore.Properties {
	return chunkstore.Properties{
		Name: "local:" + dir,
		// Disk calls block in the kernel, not on the CPU; a few per core
		// keep the disk's queue full while hashing goes on.
		Concurrency: 16,
		Local:       true,
	}
}

// Close syncs pending chunks, so that they survive into the next Open,
// and releases the lock. Calling it again does nothing.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	serr := s.Sync(context.Background())
	s.kicks.Wait() // they use the lock file's descriptor
	err := unlockStore(s.lock)
	s.lock = nil
	if err != nil {
		err = fmt.Errorf("close store %s: %w", s.dir, err)
	}
	return errors.Join(serr, err)
}
