//go:build ceph

// Package rados is the chunkstore.Store that keeps chunks as objects in a
// Ceph RADOS pool, through librados (github.com/ceph/go-ceph's rados
// package). It is built only with `-tags ceph`, which needs cgo and
// librados-dev; a plain build of casfs has no Ceph code and no C dependency.
//
// # Layout
//
// A store lives in one pool under a namespace prefix (Options.Namespace,
// empty by default), so that several stores, or one per test, can share a
// pool:
//
//	namespace PREFIX          object "casfs.config": the store's
//	                          chunkstore.Config, JSON, written once by Init
//	namespace PREFIX.chunks   one object per chunk, named by its 64-digit hex
//	(or "chunks")             ID, holding the bytes Put was given
//
// The config object is what makes a namespace a store: Init creates it
// exclusively (a second Init fails with ErrExists) and Open refuses a
// namespace without one (ErrNoStore) or with a config of an unknown or newer
// format (chunkstore.ErrUnknownFormat). Objects in the chunks namespace whose
// names are not IDs are ignored by List.
//
// # Atomicity
//
// Put sends one compound write op: create exclusively, then write the whole
// object. RADOS applies an op's steps atomically, so a reader sees no object
// or the whole chunk, never a partial one, whatever happens to the client
// mid-way. An object that already exists makes the op fail with EEXIST,
// which Put reports as success: the ID is the content's fingerprint, so what
// is there is what this Put would have written (and the op's atomicity means
// it is whole). Concurrent Puts of one ID are therefore safe: one creates,
// the others find it.
//
// A Put that returned nil is durable as far as the pool's replication
// promises: RADOS acknowledges a write once every replica has it. Sync,
// the barrier before a commit, therefore has nothing to do.
//
// # Blocking calls and contexts
//
// librados calls take no context and block an OS thread until the cluster
// answers. Every call therefore goes through the connection's semaphore
// (Options.Concurrency slots, Properties.Concurrency), so a burst of callers
// cannot pin unbounded threads, and the context is checked before a call (no
// call starts for a cancelled context, including while waiting for a slot)
// and after it (a cancelled caller gets ctx.Err(), not a stale result). A
// call already sent is not interrupted: it is bounded by librados's
// timeouts, which Connect makes sure are finite (Options.Timeout for
// connecting and the monitors, Options.OpTimeout or the config's own for
// the OSDs; librados's defaults wait minutes or forever), so that a dead
// cluster gives an error rather than a hang.
//
// Close waits for the calls in flight before it frees the librados handles
// they use, and refuses later calls (ErrClosed): Go code still running
// against a closed store, such as a chunk cache's background fetch, must get
// an error, not a use after free in C that kills the process.
//
// # Errors
//
// ENOENT on a chunk becomes an error matching chunkstore.ErrNotFound. Other
// errors are wrapped with the pool, namespace and object they concern, and
// keep go-ceph's error for errors.Is. Connecting distinguishes the causes an
// operator can fix: no answer from the monitors (ErrUnreachable), refused
// credentials (ErrAuth) and a missing pool (ErrNoPool).
package rados
