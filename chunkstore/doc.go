// Package chunkstore defines how casfs keeps chunks: immutable byte strings
// addressed by the strong fingerprint of their uncompressed content.
//
// Words used throughout casfs:
//
//   - A chunk is a piece of file content, cut by a chunker (see package
//     chunkstore/chunker). Its ID is the BLAKE3-256 (or, by store config,
//     SHA-256) digest of its uncompressed bytes.
//   - A Store keeps opaque byte strings under IDs. It knows nothing about
//     compression or files; it is the part that differs between a local
//     directory and a Ceph RADOS pool.
//   - Decorators wrap a Store and keep its contract: Encoded compresses,
//     frames and verifies chunks; other layers add caching or limits. They are
//     stacked in one visible place (see versions.Open) so a reader can see the
//     whole data path.
//   - A store's Config records, at init time, everything that decides how bytes
//     are laid out (format version, hash, chunker, compression). A store whose
//     config is of an unknown or newer format is refused rather than guessed at.
//
// Invariants every Store keeps, checked by the conformance suite in
// chunkstore/chunkstoretest:
//
//   - Put is idempotent: putting an ID that is already present succeeds and
//     leaves the stored chunk as it was.
//   - Durability is a barrier, not a property of each Put: a chunk that Put
//     stored is durable once a Sync called after that Put returned has
//     returned nil (or the Store was closed without error). A store may
//     keep chunks in volatile form until then, so that one commit pays for
//     making many chunks durable once rather than once per chunk.
//   - Read after write: once Put returns, Has and Get see the chunk, from this
//     and from any other Store opened on the same location.
//   - A Put that fails or is interrupted leaves either nothing or the whole
//     chunk: never a partial chunk under its ID.
//   - Get and Delete of a missing ID return an error that matches ErrNotFound
//     (errors.Is); Delete of a missing ID is not otherwise an error for callers
//     that tolerate it, so garbage collection can be retried.
//   - A chunk whose bytes do not match its ID is reported as a *CorruptError,
//     never returned as data.
package chunkstore
