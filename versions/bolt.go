package versions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltOptions configures OpenBolt. The zero value is ready to use.
type BoltOptions struct {
	// Now is the catalog's clock (times, version IDs); time.Now if nil.
	Now func() time.Time
	// ReadOnly opens an existing database without writing to it; changes
	// fail with ErrReadOnly.
	ReadOnly bool
	// Timeout bounds the wait for bolt's file lock (1s if zero). The store
	// lock is taken before the catalog is opened; this is a second guard, so
	// a long wait means something is wrong and is not worth sitting out.
	Timeout time.Duration
}

// OpenBolt opens or creates the catalog in the bbolt database file at path:
// reads run concurrently on a snapshot, writes are serialized and fsynced
// before they return.
func OpenBolt(path string, opts BoltOptions) (*KVCatalog, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.Timeout,
		ReadOnly:     opts.ReadOnly,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open catalog %s: %w (no lock after %v; is another casfs running on this store?): %w",
			path, ErrInUse, opts.Timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if !opts.ReadOnly {
		// A new file gets every bucket; an existing one is left as it is,
		// so that a damaged catalog is reported rather than patched up.
		err = db.Update(func(tx *bolt.Tx) error {
			if tx.Bucket(bktMeta) != nil {
				return nil
			}
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var c *KVCatalog
	if err == nil {
		c, err = NewKVCatalog(context.Background(), boltKV{db}, KVOptions{Now: opts.Now, ReadOnly: opts.ReadOnly})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return c, nil
}

// boltKV is a KV over a bbolt database, one bucket per KV bucket.
type boltKV struct{ db *bolt.DB }

func (k boltKV) View(ctx context.Context, fn func(KVTx) error) error {
	return k.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (k boltKV) Update(ctx context.Context, fn func(KVTx) error) error {
	return k.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (k boltKV) Close() error { return k.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) KVBucket {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

type boltBucket struct{ b *bolt.Bucket }

// Get relies on bbolt returning a non-nil slice for an empty value.
func (b boltBucket) Get(k []byte) []byte { return b.b.Get(k) }

func (b boltBucket) Put(k, v []byte) error {
	if v == nil {
		v = []byte{}
	}
	return b.b.Put(k, v)
}

func (b boltBucket) Delete(k []byte) error { return b.b.Delete(k) }

func (b boltBucket) Scan(prefix, after []byte, fn func(k, v []byte) error) error {
	c := b.b.Cursor()
	start := prefix
	if bytes.Compare(after, start) > 0 {
		start = after
	}
	var k, v []byte
	if start == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(start)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if after != nil && bytes.Compare(k, after) <= 0 {
			continue
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}
