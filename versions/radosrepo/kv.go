//go:build ceph

package radosrepo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	librados "github.com/ceph/go-ceph/rados"

	"github.com/casfs/casfs/chunkstore/rados"
	"github.com/casfs/casfs/versions"
)

// catalogObject is the object whose omap holds the catalog, in the store's
// namespace next to the config object.
const catalogObject = "casfs.catalog"

// scanPage is how many omap entries a scan reads per round trip.
const scanPage = 1000

// maxAttempts bounds how often a transaction is retried after conflicting
// with another writer before Update gives up.
const maxAttempts = 200

// errConflict is a transaction that saw the catalog object change under it:
// between two of its reads, or between its reads and its write.
var errConflict = errors.New("catalog changed during the transaction")

// ErrNoCatalog is matched by Open's error for a store without its catalog
// object (an init that was interrupted, or objects removed by hand).
var ErrNoCatalog = errors.New("no catalog object")

// omapKV is a versions.KV in the omap of one RADOS object.
//
// Every key of every bucket is an omap key "BUCKET/HEX", HEX being the key
// in lowercase hex: librados takes omap scan bounds as C strings, so keys
// must hold no NUL byte, and hex keeps the byte order. Values are stored as
// they are.
//
// Transactions are optimistic. Each one reads through its own IOContext,
// which tells the object version each read saw (librados keeps the last
// version per IOContext); reads that saw different versions are a conflict.
// Its writes are buffered and applied in one write op guarded by
// AssertVersion(the version its reads saw): RADOS applies the op's omap
// changes atomically, or none of them if the object moved on, in which case
// the transaction runs again on fresh reads. Updates of one process are
// serialized, as they would only conflict with each other; other processes
// (other mounts, other machines) are what the version guard is for.
type omapKV struct {
	c   *rados.Conn
	ns  string
	oid string
	mu  sync.Mutex // serializes this process's Updates
	// conflicts counts transactions run again after a conflict.
	conflicts atomic.Int64
}

func newOmapKV(c *rados.Conn) *omapKV {
	return &omapKV{c: c, ns: c.Namespace(), oid: catalogObject}
}

func (k *omapKV) where() string {
	return fmt.Sprintf("catalog object %s of %s", k.oid, k.c.Location())
}

// View implements versions.KV.
func (k *omapKV) View(ctx context.Context, fn func(versions.KVTx) error) error {
	return k.run(ctx, fn, false)
}

// Update implements versions.KV.
func (k *omapKV) Update(ctx context.Context, fn func(versions.KVTx) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.run(ctx, fn, true)
}

// Close implements versions.KV; the connection belongs to the chunk store.
func (k *omapKV) Close() error { return nil }

func (k *omapKV) run(ctx context.Context, fn func(versions.KVTx) error, write bool) error {
	for attempt := 1; ; attempt++ {
		var fnErr error
		err := k.c.WithIOContext(ctx, k.ns, func(io *librados.IOContext) error {
			tx := &omapTx{ctx: ctx, kv: k, io: io, puts: map[string][]byte{}, dels: map[string]bool{}, reads: map[string][]byte{}}
			fnErr = fn(tx)
			if tx.err != nil {
				return tx.err
			}
			if fnErr != nil || !write || (len(tx.puts) == 0 && len(tx.dels) == 0) {
				return nil
			}
			return tx.commit()
		})
		if !errors.Is(err, errConflict) {
			if err != nil {
				return err
			}
			return fnErr
		}
		k.conflicts.Add(1)
		if attempt == maxAttempts {
			return fmt.Errorf("%s: gave up after %d conflicting attempts: %w", k.where(), attempt, err)
		}
		// Back off a little, more each time, so that writers on several
		// machines stop colliding.
		d := time.Duration(1+rand.IntN(min(attempt, 20))) * 250 * time.Microsecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// omapTx is one transaction. It is used by one goroutine.
type omapTx struct {
	ctx   context.Context
	kv    *omapKV
	io    *librados.IOContext
	ver   uint64
	seen  bool  // ver is set
	err   error // first error; the transaction fails with it
	puts  map[string][]byte
	dels  map[string]bool
	reads map[string][]byte // server values read so far; nil: missing
}

func (t *omapTx) Bucket(name []byte) versions.KVBucket {
	return &omapBucket{t: t, prefix: string(name) + "/"}
}

// fail records err as the transaction's error if it is the first.
func (t *omapTx) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// observe records the object version a read saw.
func (t *omapTx) observe() {
	v, err := t.io.GetLastVersion()
	if err != nil {
		t.fail(err)
		return
	}
	switch {
	case !t.seen:
		t.ver, t.seen = v, true
	case v != t.ver:
		t.fail(errConflict)
	}
}

// readErr turns a failed read op into the transaction's error.
func (t *omapTx) readErr(err error) {
	switch {
	case errors.Is(err, librados.ErrNotFound):
		t.fail(fmt.Errorf("%s: %w (was casfs init interrupted? run it again)", t.kv.where(), ErrNoCatalog))
	default:
		t.fail(fmt.Errorf("%s: read: %w", t.kv.where(), err))
	}
}

func (t *omapTx) get(fk string) []byte {
	if v, ok := t.reads[fk]; ok {
		return v
	}
	if t.err != nil {
		return nil
	}
	if err := t.ctx.Err(); err != nil {
		t.fail(err)
		return nil
	}
	op := librados.CreateReadOp()
	defer op.Release()
	step := op.GetOmapValuesByKeys([]string{fk})
	if err := op.Operate(t.io, t.kv.oid, librados.OperationNoFlag); err != nil {
		t.readErr(err)
		return nil
	}
	t.observe()
	var val []byte
	for {
		kv, err := step.Next()
		if err != nil {
			t.fail(fmt.Errorf("%s: read: %w", t.kv.where(), err))
			return nil
		}
		if kv == nil {
			break
		}
		if kv.Key == fk {
			val = kv.Value
			if val == nil {
				val = []byte{}
			}
		}
	}
	t.reads[fk] = val
	return val
}

// page reads up to scanPage entries with prefix fp after start, in order.
func (t *omapTx) page(fp, start string) (keys []string, vals [][]byte, more bool) {
	if t.err != nil {
		return nil, nil, false
	}
	if err := t.ctx.Err(); err != nil {
		t.fail(err)
		return nil, nil, false
	}
	op := librados.CreateReadOp()
	defer op.Release()
	step := op.GetOmapValues(start, fp, scanPage)
	if err := op.Operate(t.io, t.kv.oid, librados.OperationNoFlag); err != nil {
		t.readErr(err)
		return nil, nil, false
	}
	t.observe()
	for {
		kv, err := step.Next()
		if err != nil {
			t.fail(fmt.Errorf("%s: scan: %w", t.kv.where(), err))
			return nil, nil, false
		}
		if kv == nil {
			break
		}
		v := kv.Value
		if v == nil {
			v = []byte{}
		}
		keys = append(keys, kv.Key)
		vals = append(vals, v)
	}
	return keys, vals, step.More()
}

// commit applies the buffered writes in one op guarded by the version the
// reads saw.
func (t *omapTx) commit() error {
	op := librados.CreateWriteOp()
	defer op.Release()
	if t.seen {
		op.AssertVersion(t.ver)
	} else {
		op.AssertExists()
	}
	if len(t.puts) > 0 {
		op.SetOmap(t.puts)
	}
	if len(t.dels) > 0 {
		keys := make([]string, 0, len(t.dels))
		for k := range t.dels {
			keys = append(keys, k)
		}
		op.RmOmapKeys(keys)
	}
	err := op.Operate(t.io, t.kv.oid, librados.OperationNoFlag)
	switch rados.Errno(err) {
	case 0:
		return nil
	case syscall.ERANGE, syscall.EOVERFLOW:
		return errConflict
	case syscall.ENOENT:
		return fmt.Errorf("%s: %w", t.kv.where(), ErrNoCatalog)
	case syscall.EPERM, syscall.EACCES:
		return fmt.Errorf("%s: write refused: client.%s lacks write capability on the pool (it needs osd 'allow rw pool=%s'): %w",
			t.kv.where(), t.kv.c.Options().User, t.kv.c.Options().Pool, err)
	}
	return fmt.Errorf("%s: write: %w", t.kv.where(), err)
}

// omapBucket is one bucket of a transaction: the omap keys under prefix.
type omapBucket struct {
	t      *omapTx
	prefix string
}

func (b *omapBucket) key(k []byte) string { return b.prefix + hex.EncodeToString(k) }

func (b *omapBucket) Get(k []byte) []byte {
	fk := b.key(k)
	if v, ok := b.t.puts[fk]; ok {
		return v
	}
	if b.t.dels[fk] {
		return nil
	}
	return b.t.get(fk)
}

func (b *omapBucket) Put(k, v []byte) error {
	fk := b.key(k)
	delete(b.t.dels, fk)
	b.t.puts[fk] = append([]byte{}, v...)
	return nil
}

func (b *omapBucket) Delete(k []byte) error {
	fk := b.key(k)
	delete(b.t.puts, fk)
	b.t.dels[fk] = true
	return nil
}

// Scan merges the server's keys, page by page, with the transaction's own
// puts and deletes.
func (b *omapBucket) Scan(prefix, after []byte, fn func(k, v []byte) error) error {
	fp := b.key(prefix)
	start := ""
	if after != nil {
		start = b.key(after)
	}
	var local []string
	for fk := range b.t.puts {
		if strings.HasPrefix(fk, fp) && fk > start {
			local = append(local, fk)
		}
	}
	sort.Strings(local)
	emit := func(fk string, v []byte) error {
		k, err := hex.DecodeString(fk[len(b.prefix):])
		if err != nil {
			b.t.fail(fmt.Errorf("%s: corrupt: omap key %q is not hex", b.t.kv.where(), fk))
			return b.t.err
		}
		return fn(k, v)
	}
	li := 0
	cursor := start
	for {
		keys, vals, more := b.page(fp, cursor)
		if b.t.err != nil {
			return b.t.err
		}
		for i, fk := range keys {
			for li < len(local) && local[li] < fk {
				if err := emit(local[li], b.t.puts[local[li]]); err != nil {
					return err
				}
				li++
			}
			if li < len(local) && local[li] == fk {
				if err := emit(fk, b.t.puts[fk]); err != nil {
					return err
				}
				li++
				continue
			}
			if b.t.dels[fk] {
				continue
			}
			b.t.reads[fk] = vals[i]
			if err := emit(fk, vals[i]); err != nil {
				return err
			}
		}
		if !more || len(keys) == 0 {
			break
		}
		cursor = keys[len(keys)-1]
	}
	for ; li < len(local); li++ {
		if err := emit(local[li], b.t.puts[local[li]]); err != nil {
			return err
		}
	}
	return nil
}

func (b *omapBucket) page(fp, start string) ([]string, [][]byte, bool) { return b.t.page(fp, start) }
