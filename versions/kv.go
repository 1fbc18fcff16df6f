package versions

import "context"

// KV is the ordered key-value database a KVCatalog keeps its buckets in:
// bbolt for a local store (OpenBolt), RADOS omap for a Ceph pool.
//
// Contract, checked through versionstest.Run on every KVCatalog:
//   - View runs fn on a consistent snapshot of the database.
//   - Update runs fn and applies every Put and Delete it made atomically,
//     or none of them if fn or the commit fails. A KV with optimistic
//     concurrency may run fn more than once (each run on a fresh snapshot,
//     the earlier runs' writes discarded), so fn must only set its
//     results, never accumulate them across runs.
//   - A KV that can fail while reading (a remote one) records the first
//     such error in the transaction, answers as if the key were missing,
//     and View or Update returns that error instead of fn's: a missing key
//     that was really an I/O error never becomes a decision.
type KV interface {
	View(ctx context.Context, fn func(tx KVTx) error) error
	Update(ctx context.Context, fn func(tx KVTx) error) error
	Close() error
}

// KVTx is one transaction of a KV.
type KVTx interface {
	// Bucket returns the named bucket, nil if the database has none of
	// that name (a KV may instead make every bucket exist).
	Bucket(name []byte) KVBucket
}

// KVBucket is one ordered keyspace of a transaction. Keys and values passed
// in are not retained after the call; slices handed out are valid only until
// the transaction ends and must not be changed.
type KVBucket interface {
	// Get returns k's value, nil if k is missing. A present key always
	// has a non-nil value, empty or not.
	Get(k []byte) []byte
	Put(k, v []byte) error
	Delete(k []byte) error
	// Scan calls fn for each key that starts with prefix and sorts after
	// after (nil: from the first), in byte order, with the transaction's
	// own writes applied. It stops at the first error fn returns and
	// returns it. fn must not change the bucket.
	Scan(prefix, after []byte, fn func(k, v []byte) error) error
}
