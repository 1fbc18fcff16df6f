package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"github.com/casfs/casfs/chunkstore"
)

// Names of the packs layout; see "Packs" in the package documentation.
const (
	packsName = "packs"
	indexName = "index.db"
)

// Record framing in a pack file.
const (
	recMagic  = "cpk1"
	recHeader = 4 + 4 + chunkstore.IDSize + 4 // magic, data length, ID, CRC-32C
	// recAlign aligns every record to the filesystem's block size, so that
	// punching out a deleted record frees exactly its blocks.
	recAlign = 4096
	// maxRecord bounds a record's data: a chunk as the Encoded layer
	// frames it, with room for its header and a compressed form that grew.
	maxRecord = chunkstore.MaxChunkSize + 1<<20
)

// Variables so tests can make them small.
var (
	// packLimit is the size at which Put starts a new pack file.
	packLimit int64 = 256 << 20
	// packKickEvery is how many bytes Put writes to a pack between starts of
	// its writeback; packDropBehind is how far behind the write position
	// clean pages are dropped from the page cache (see kick).
	packKickEvery  int64 = 16 << 20
	packDropBehind int64 = 64 << 20
	// packFlushEvery is how many bytes Put writes to a pack between
	// background fdatasyncs of it (see kickLocked).
	packFlushEvery int64 = 32 << 20
	// maxOpenPacks bounds the pack files kept open for reading.
	maxOpenPacks = 512
)

var (
	bktChunks = []byte("chunks") // ID → location (packLoc.encode)
	bktPacks  = []byte("packs")  // pack number (4 bytes, big-endian) → indexed records (8 bytes)
	bktMeta   = []byte("meta")   // keyWatermark → packLoc.encode of (pack, offset, 0)
	// keyWatermark says where the records the index may lack begin: in
	// that pack from that offset, and in every pack after it.
	keyWatermark = []byte("watermark")
)

// castagnoli is the CRC-32C table: hardware-accelerated in hash/crc32.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordHeader returns the header of a record of id and data: the CRC
// covers the header's other fields and the data, so that recovery can tell
// a whole record from a torn one.
func recordHeader(id chunkstore.ID, data []byte) [recHeader]byte {
	var hdr [recHeader]byte
	copy(hdr[:], recMagic)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(data)))
	copy(hdr[8:], id[:])
	binary.BigEndian.PutUint32(hdr[40:], recordCRC(&hdr, data))
	return hdr
}

// recordCRC is the CRC a record's header carries: of the header's other
// fields and the data.
func recordCRC(hdr *[recHeader]byte, data []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr[:40], castagnoli), castagnoli, data)
}

// packLoc is where a chunk's record lies.
type packLoc struct {
	pack uint32
	off  int64  // of the record's header, a multiple of recAlign
	n    uint32 // bytes of chunk data after the header
}

func (l packLoc) span() int64 { return alignUp(recHeader + int64(l.n)) }

func (l packLoc) encode() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b[0:], l.pack)
	binary.BigEndian.PutUint64(b[4:], uint64(l.off))
	binary.BigEndian.PutUint32(b[12:], l.n)
	return b
}

func decodeLoc(b []byte) (packLoc, bool) {
	if len(b) != 16 {
		return packLoc{}, false
	}
	return packLoc{
		pack: binary.BigEndian.Uint32(b[0:]),
		off:  int64(binary.BigEndian.Uint64(b[4:])),
		n:    binary.BigEndian.Uint32(b[12:]),
	}, true
}

func packKey(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func alignUp(n int64) int64 { return (n + recAlign - 1) &^ (recAlign - 1) }

// packOp is a change of one chunk that the index does not hold yet: a Put
// (at loc) or a Delete. punch lists records of earlier puts of the chunk
// that this op makes dead, to be punched out once it is in the index.
type packOp struct {
	seq   uint64
	del   bool
	loc   packLoc
	punch []packLoc
}

// packFile is an open pack.
type packFile struct {
	n    uint32
	f    *os.File
	size int64 // bytes reserved by Puts; only the current pack grows

	// For the current pack: where the last writeback kick ended, and
	// the last background fdatasync started.
	kicked, flushed int64
	// ours: this Store made the pack, and Puts may write to it; it stays
	// open until Close.
	ours bool

	// The pack opened again with O_DIRECT for reads (see directFile),
	// on first use; nil where the filesystem does not do direct I/O.
	directOnce sync.Once
	direct     *directFile
}

// PackStore is a chunkstore.Store in a local directory with the packs
// layout. Its methods are safe for concurrent use.
type PackStore struct {
	dir      string // absolute
	cfg      chunkstore.Config
	readOnly bool
	lock     *os.File // holds the flock; nil after Close
	db       *bolt.DB

	mu      sync.Mutex
	pending map[chunkstore.ID]packOp // changes not yet in the index
	seq     uint64
	cur     *packFile            // the pack Puts append to; nil until the first Put
	next    uint32               // number of the next pack to create
	open    map[uint32]*packFile // packs open for reading (and cur)
	dirty   map[uint32]*packFile // packs written since the last Sync took its batch
	newPack bool                 // packs/ has a name no Sync made durable yet

	syncSem syncGate
	failed  error // guarded by holding syncSem; see Store's batcher
	// putMu is read-held by each Put from its look at the index until
	// its record is pending, and held by a checkpoint (checkpointHeld).
	putMu sync.RWMutex
	// unindexed counts the bytes of records put since the last checkpoint.
	unindexed atomic.Int64

	// Background fdatasyncs (see kickLocked): whether one is running, the
	// first error one returned (which every later Sync returns: the
	// fdatasync that saw a writeback error consumed it), and a wait for
	// them before Close closes the files.
	flushing atomic.Bool
	flushErr atomic.Pointer[error]
	flushes  sync.WaitGroup
}

var (
	_ chunkstore.Store          = (*PackStore)(nil)
	_ chunkstore.BufferedGetter = (*PackStore)(nil)
)

func packName(n uint32) string { return fmt.Sprintf("%08x.pack", n) }

// parsePackName returns the number of a pack file's name.
func parsePackName(name string) (uint32, bool) {
	hex, ok := strings.CutSuffix(name, ".pack")
	if !ok || len(hex) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 32)
	return uint32(n), err == nil
}

func (s *PackStore) packPath(n uint32) string {
	return filepath.Join(s.dir, packsName, packName(n))
}

// openPacks opens a store of the packs layout; Open has read and checked
// its config and holds its lock.
func openPacks(dir string, cfg chunkstore.Config, lock *os.File, opts Options) (*PackStore, error) {
	s := &PackStore{
		dir: dir, cfg: cfg, readOnly: opts.ReadOnly, lock: lock,
		pending: map[chunkstore.ID]packOp{},
		open:    map[uint32]*packFile{},
		dirty:   map[uint32]*packFile{},
		syncSem: make(syncGate, 1),
	}
	if !opts.ReadOnly {
		if err := os.Mkdir(filepath.Join(dir, packsName), dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	idx := filepath.Join(dir, indexName)
	if opts.ReadOnly {
		if _, err := os.Stat(idx); errors.Is(err, fs.ErrNotExist) {
			// Never written to: an empty store. bbolt cannot open a
			// missing file read-only, and must not create one.
			idx = ""
		}
	}
	if idx != "" {
		db, err := bolt.Open(idx, fileMode, &bolt.Options{
			Timeout:      time.Second,
			ReadOnly:     opts.ReadOnly,
			FreelistType: bolt.FreelistMapType,
		})
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("index %s: another process holds it", idx)
		}
		if err != nil {
			// Every index entry can be found again in the packs: a new
			// index starts with no watermark, so Open scans them all.
			return nil, fmt.Errorf("index %s: %w (the index can be rebuilt from the packs: move it aside and open the store again)", idx, err)
		}
		s.db = db
	}
	if !opts.ReadOnly {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bktChunks, bktPacks, bktMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.db.Close()
			return nil, fmt.Errorf("index %s: %w", idx, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, packsName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.closeDB()
		return nil, err
	}
	var nums []uint32
	for _, e := range entries {
		// Never append to an existing pack: a crash may have left
		// unindexed bytes at its end.
		if n, ok := parsePackName(e.Name()); ok {
			nums = append(nums, n)
			s.next = max(s.next, n+1)
		}
	}
	if err := s.recoverRecords(nums); err != nil {
		s.closeDB()
		return nil, err
	}
	if !opts.ReadOnly {
		if err := s.removeDeadPacks(); err != nil {
			s.closeDB()
			return nil, fmt.Errorf("index %s: %w", idx, err)
		}
	}
	return s, nil
}

func (s *PackStore) closeDB() {
	if s.db != nil {
		s.db.Close()
	}
}

// Config returns the store's config, as Init recorded it.
func (s *PackStore) Config() chunkstore.Config { return s.cfg }

// Dir returns the store's directory, as an absolute path.
func (s *PackStore) Dir() string { return s.dir }

// Properties describes the store.
func (s *PackStore) Properties() chunkstore.Properties { return properties(s.dir) }

// indexed returns id's location in the index.
func (s *PackStore) indexed(id chunkstore.ID) (packLoc, bool, error) {
	if s.db == nil {
		return packLoc{}, false, nil
	}
	var l packLoc
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktChunks)
		if b == nil {
			return errors.New("index has no chunks bucket")
		}
		v := b.Get(id[:])
		if v == nil {
			return nil
		}
		if l, ok = decodeLoc(v); !ok {
			return fmt.Errorf("index entry of chunk %s is %d bytes, not 16", id.Str(), len(v))
		}
		return nil
	})
	return l, ok, err
}

// locate returns where chunk id is, pending or indexed.
func (s *PackStore) locate(id chunkstore.ID) (packLoc, bool, error) {
	s.mu.Lock()
	op, ok := s.pending[id]
	s.mu.Unlock()
	if ok {
		return op.loc, !op.del, nil
	}
	return s.indexed(id)
}

// Put appends a record of id and data to the current pack and records it
// as pending: Has, Get and List see it at once, Sync makes it durable, and
// a checkpoint puts it in the index. An id already present is left as it
// is.
func (s *PackStore) Put(ctx context.Context, id chunkstore.ID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("store %s: put chunk %s: %w", s.dir, id.Str(), ErrReadOnly)
	}
	if len(data) > maxRecord {
		return fmt.Errorf("store %s: put chunk %s: %d bytes is more than a chunk can be", s.dir, id.Str(), len(data))
	}
	s.putMu.RLock()
	n, err := s.put(id, data)
	s.putMu.RUnlock()
	if err != nil {
		return fmt.Errorf("store %s: put chunk %s: %w", s.dir, id.Str(), err)
	}
	if n >= checkpointChanges || s.unindexed.Load() >= checkpointBytes {
		// Time for a checkpoint (see syncHeld), unless one is running.
		return s.syncSoon(ctx)
	}
	return nil
}

// put is Put under putMu's read lock (see checkpointHeld); it returns how
// many changes are pending.
func (s *PackStore) put(id chunkstore.ID, data []byte) (int, error) {
	_, ok, err := s.locate(id)
	if err != nil || ok {
		return 0, err
	}
	pf, l, err := s.reserve(len(data))
	if err != nil {
		return 0, err
	}
	hdr := recordHeader(id, data)
	if err := writeRecord(pf.f, hdr[:], data, l.off); err != nil {
		punch(pf.f, l)
		return 0, err
	}

	s.mu.Lock()
	op, ok := s.pending[id]
	added := !ok || op.del
	if added {
		s.seq++
		var dead []packLoc
		if ok {
			dead = op.punch // a Delete of it is pending: still dead
		}
		s.pending[id] = packOp{seq: s.seq, loc: l, punch: dead}
		s.dirty[pf.n] = pf
		s.unindexed.Add(l.span())
	}
	n := len(s.pending)
	kick := s.kickLocked(pf, l.off+l.span(), false)
	s.mu.Unlock()
	if !added {
		// A concurrent Put of the same chunk won; its record is as good.
		punch(pf.f, l)
	}
	if kick != nil {
		kick()
	}
	return n, nil
}

// withFd calls fn with f's descriptor, which stays open until fn returns
// even if f is closed meanwhile (os.File counts its users); on a closed f it
// returns os.ErrClosed without calling fn.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// writeRecord writes a record's header and data at off. It is a variable
// so tests can make the disk look full.
var writeRecord = func(f *os.File, hdr, data []byte, off int64) error {
	want := len(hdr) + len(data)
	var n int
	err := withFd(f, func(fd int) (err error) {
		n, err = unix.Pwritev(fd, [][]byte{hdr, data}, off)
		return err
	})
	if err == nil && n < want {
		// Short writes of regular files happen only at the end of the
		// space; finish with plain writes, which report why.
		var buf []byte
		buf = append(append(buf, hdr...), data...)
		_, err = f.WriteAt(buf[n:], off+int64(n))
	}
	return err
}

// punch frees a record's blocks; the pack keeps its size. It is a hint:
// where it fails, the space stays used. A variable for the tests.
var punch = func(f *os.File, l packLoc) {
	_ = withFd(f, func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, l.off, l.span())
	})
}

// reserve returns the pack and place for a record of n data bytes, starting
// a new pack when the current one is full.
func (s *PackStore) reserve(n int) (*packFile, packLoc, error) {
	span := alignUp(recHeader + int64(n))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.size > 0 && s.cur.size+span > packLimit {
		if s.cur != nil {
			if kick := s.kickLocked(s.cur, s.cur.size, true); kick != nil {
				go kick() // records still being written are Sync's to find
			}
		}
		f, err := os.OpenFile(s.packPath(s.next), os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
		if err != nil {
			return nil, packLoc{}, err
		}
		s.cur = &packFile{n: s.next, f: f, ours: true}
		s.open[s.next] = s.cur
		s.next++
		s.newPack = true
	}
	l := packLoc{pack: s.cur.n, off: s.cur.size, n: uint32(n)}
	s.cur.size += span
	return s.cur, l, nil
}

// kickLocked returns what to do, outside mu, once a Put has written pf up to
// end: every packKickEvery bytes, start the writeback of what was written
// since the last kick, so that Sync finds most of it on disk, and drop from
// the page cache what lies packDropBehind before it (clean by then): a
// large put would otherwise fill the page cache with chunks no one is about
// to read, and fresh page cache is expensive here (see dropLater).
//
// Puts run in parallel and finish out of order, so records just before end
// may not be written yet: each kick also covers the two windows before its
// own, where the kernel finds the stragglers' dirty pages (pages already
// clean or under writeback cost it next to nothing). force kicks whatever
// is left, for a pack Puts have stopped growing.
func (s *PackStore) kickLocked(pf *packFile, end int64, force bool) func() {
	if end-pf.kicked < packKickEvery && !(force && end > pf.kicked) {
		return nil
	}
	from := max(0, pf.kicked-2*packKickEvery)
	pf.kicked = end
	flush := end-pf.flushed >= packFlushEvery && s.flushing.CompareAndSwap(false, true)
	if flush {
		pf.flushed = end
		s.flushes.Add(1)
	}
	return func() {
		_ = withFd(pf.f, func(fd int) error {
			_ = unix.SyncFileRange(fd, from, end-from, unix.SYNC_FILE_RANGE_WRITE)
			if from > packDropBehind {
				_ = unix.Fadvise(fd, 0, from-packDropBehind, unix.FADV_DONTNEED)
			}
			return nil
		})
		if flush {
			go s.flush(pf)
		}
	}
}

// file returns pack n open, and what to call once done with it. It keeps
// up to maxOpenPacks packs open for the next caller; past that, the pack
// is opened for this caller alone and closed by done, so that no
// descriptor is ever closed under a reader. The packFile is nil then.
func (s *PackStore) file(n uint32) (pf *packFile, f *os.File, done func(), err error) {
	s.mu.Lock()
	if pf, ok := s.open[n]; ok {
		s.mu.Unlock()
		return pf, pf.f, func() {}, nil
	}
	s.mu.Unlock()
	flag := os.O_RDWR
	if s.readOnly {
		flag = os.O_RDONLY
	}
	f, err = os.OpenFile(s.packPath(n), flag, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pf, ok := s.open[n]; ok {
		f.Close()
		return pf, pf.f, func() {}, nil
	}
	if len(s.open) >= maxOpenPacks {
		return nil, f, func() { f.Close() }, nil
	}
	pf = &packFile{n: n, f: f}
	s.open[n] = pf
	return pf, f, func() {}, nil
}

// read reads chunk id's record at l into a buffer from alloc and returns
// the chunk's bytes and that buffer (data lies within it). A record out of
// the page cache is read direct, into a buffer of its whole span; see
// "Packs" in the package documentation for why.
func (s *PackStore) read(id chunkstore.ID, l packLoc, alloc func(int) []byte, free func([]byte)) (data, buf []byte, err error) {
	pf, f, done, err := s.file(l.pack)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	want := recHeader + int(l.n)
	var n int
	read := false
	if d := s.directFile(pf); d != nil && !isCached(f, l.off, want) {
		buf = alloc(int(l.span()))
		if d.fits(buf) {
			n, err = directPread(d, buf, l.off)
			read = true
			if err == unix.EINVAL {
				d.refused.Store(true)
				read, err = false, nil
			}
		}
		if !read {
			free(buf)
		}
	}
	if !read {
		buf = alloc(want)
		err = withFd(f, func(fd int) (err error) {
			n, err = unix.Pread(fd, buf, l.off)
			return err
		})
	}
	if err != nil {
		free(buf)
		return nil, nil, &fs.PathError{Op: "read", Path: s.packPath(l.pack), Err: err}
	}
	hdr := buf[:min(n, recHeader)]
	switch {
	case n < want:
		err = s.corrupt(id, l, fmt.Sprintf("record is cut short: %d of %d bytes", n, want))
	case string(hdr[:4]) != recMagic:
		err = s.corrupt(id, l, "no record header")
	case binary.BigEndian.Uint32(hdr[4:]) != l.n:
		err = s.corrupt(id, l, fmt.Sprintf("record length %d, index says %d", binary.BigEndian.Uint32(hdr[4:]), l.n))
	case !bytes.Equal(hdr[8:40], id[:]):
		err = s.corrupt(id, l, "record holds another chunk")
	}
	if err != nil {
		free(buf)
		return nil, nil, err
	}
	return buf[recHeader:want], buf, nil
}

func (s *PackStore) corrupt(id chunkstore.ID, l packLoc, why string) error {
	return &chunkstore.CorruptError{ID: id, Where: fmt.Sprintf("%s at offset %d", s.packPath(l.pack), l.off), Reason: why}
}

// get reads chunk id into a buffer from alloc. A record found damaged is
// looked up again before it is called corrupt: a Delete may have punched
// it out after this looked it up.
func (s *PackStore) get(ctx context.Context, id chunkstore.ID, alloc func(int) []byte, free func([]byte)) (data, buf []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for try := 0; ; try++ {
		l, ok, err := s.locate(id)
		if err != nil {
			return nil, nil, fmt.Errorf("store %s: get chunk %s: %w", s.dir, id.Str(), err)
		}
		if !ok {
			return nil, nil, chunkstore.NotFound(id)
		}
		data, buf, err := s.read(id, l, alloc, free)
		if err == nil {
			return data, buf, nil
		}
		// Deleted or put again since the lookup: look again.
		if again, ok, lerr := s.locate(id); lerr == nil && (!ok || again != l) && try < 2 {
			continue
		}
		if errors.Is(err, chunkstore.ErrCorrupt) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("store %s: get chunk %s: %w", s.dir, id.Str(), err)
	}
}

// Get returns the bytes stored under id.
func (s *PackStore) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	data, _, err := s.get(ctx, id, func(n int) []byte { return make([]byte, n) }, func([]byte) {})
	return data, err
}

// GetBuffered reads chunk id into a buffer from bufs, with one pread(2).
func (s *PackStore) GetBuffered(ctx context.Context, id chunkstore.ID, bufs chunkstore.Buffers) (data, buf []byte, err error) {
	return s.get(ctx, id, bufs.Get, bufs.Put)
}

// Has reports whether id is stored, pending or indexed.
func (s *PackStore) Has(ctx context.Context, id chunkstore.ID) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, ok, err := s.locate(id)
	if err != nil {
		return false, fmt.Errorf("store %s: has chunk %s: %w", s.dir, id.Str(), err)
	}
	return ok, nil
}

// Delete removes id. It is pending until the next Sync, which takes it out
// of the index and only then punches its record out of the pack, so that an
// index entry never points at freed blocks.
func (s *PackStore) Delete(ctx context.Context, id chunkstore.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("store %s: delete chunk %s: %w", s.dir, id.Str(), ErrReadOnly)
	}
	s.mu.Lock()
	_, pending := s.pending[id]
	s.mu.Unlock()
	inIndex := false
	if !pending {
		var err error
		if _, inIndex, err = s.indexed(id); err != nil {
			return fmt.Errorf("store %s: delete chunk %s: %w", s.dir, id.Str(), err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The records to punch out: those of a pending Put. The one in the
	// index, if any, is Sync's to find (it reads the index in the same
	// transaction that deletes the entry).
	var dead []packLoc
	switch op, ok := s.pending[id]; {
	case ok && op.del:
		return chunkstore.NotFound(id)
	case ok:
		dead = append(append(dead, op.punch...), op.loc)
	case !inIndex && !pending:
		return chunkstore.NotFound(id)
	}
	// (pending, now gone: a Sync indexed it meanwhile; it is in the index.)
	s.seq++
	s.pending[id] = packOp{seq: s.seq, del: true, punch: dead}
	return nil
}

// listBatch is how many index entries List copies out per read transaction,
// so that a slow caller never holds one open for long.
const listBatch = 1024

// List reports the pending chunks, then the indexed ones that are not
// pending.
func (s *PackStore) List(ctx context.Context, fn func(chunkstore.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	skip := make(map[chunkstore.ID]bool, len(s.pending))
	var puts []chunkstore.Info
	for id, op := range s.pending {
		skip[id] = true
		if !op.del {
			puts = append(puts, chunkstore.Info{ID: id, Size: int64(op.loc.n)})
		}
	}
	s.mu.Unlock()
	for _, info := range puts {
		if err := fn(info); err != nil {
			return err
		}
	}
	if s.db == nil {
		return nil
	}
	var after []byte
	for {
		var batch []chunkstore.Info
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bktChunks).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(batch) < listBatch; k, v = c.Next() {
				l, ok := decodeLoc(v)
				if !ok || len(k) != chunkstore.IDSize {
					continue
				}
				var id chunkstore.ID
				copy(id[:], k)
				batch = append(batch, chunkstore.Info{ID: id, Size: int64(l.n)})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store %s: list: %w", s.dir, err)
		}
		if len(batch) == 0 {
			return nil
		}
		last := batch[len(batch)-1].ID
		after = last[:]
		for _, info := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if skip[info.ID] {
				continue
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
}

// Close syncs what is pending, so that it survives into the next Open, and
// releases the lock. Calling it again does nothing.
func (s *PackStore) Close() error {
	if s.lock == nil {
		return nil
	}
	serr := s.Sync(context.Background())
	if serr == nil && !s.readOnly {
		// Index what is pending, so that the next Open has nothing
		// to recover.
		serr = s.syncSem.do(context.Background(), s.checkpointHeld)
	}
	s.flushes.Wait()
	s.mu.Lock()
	for n, pf := range s.open {
		pf.f.Close()
		if pf.direct != nil {
			pf.direct.Close()
		}
		delete(s.open, n)
	}
	s.cur = nil
	s.mu.Unlock()
	var derr error
	if s.db != nil {
		derr = s.db.Close()
	}
	err := unlockStore(s.lock)
	s.lock = nil
	if err != nil {
		err = fmt.Errorf("close store %s: %w", s.dir, err)
	}
	return errors.Join(serr, derr, err)
}

// Locate says where chunk id's record lies: the pack file, the offset of
// the record and of its data, and the data's length. It is for tools and
// tests that look at the bytes on disk.
func (s *PackStore) Locate(id chunkstore.ID) (path string, dataOff int64, n int, err error) {
	l, ok, err := s.locate(id)
	if err != nil {
		return "", 0, 0, err
	}
	if !ok {
		return "", 0, 0, chunkstore.NotFound(id)
	}
	return s.packPath(l.pack), l.off + recHeader, int(l.n), nil
}

var _ io.Closer = (*PackStore)(nil)

// FindOnDisk finds chunk id's stored bytes in the store directory dir
// without opening the store (no lock, no index): in the files layout its
// file, in the packs layout the whole record that holds it, found by
// scanning the packs as recovery does (scanPack). It returns the file, where the bytes start and how
// many there are. It is for tests and for looking at a store by hand, and
// takes time in proportion to the store's size.
func FindOnDisk(dir string, id chunkstore.ID) (path string, off int64, n int, err error) {
	h := id.String()
	p := filepath.Join(dir, chunksName, h[0:2], h[2:4], h)
	if st, err := os.Stat(p); err == nil {
		return p, 0, int(st.Size()), nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, packsName))
	if err != nil {
		return "", 0, 0, err
	}
	found := errors.New("found")
	for _, e := range entries {
		pack, ok := parsePackName(e.Name())
		if !ok {
			continue
		}
		p := filepath.Join(dir, packsName, e.Name())
		err := scanPack(p, pack, 0, func(rid chunkstore.ID, l packLoc) error {
			if rid != id {
				return nil
			}
			off, n = l.off+recHeader, int(l.n)
			return found
		})
		if err == found {
			return p, off, n, nil
		}
		if err != nil {
			return "", 0, 0, err
		}
	}
	return "", 0, 0, chunkstore.NotFound(id)
}
