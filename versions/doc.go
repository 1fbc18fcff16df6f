// Package versions is casfs's namespace and history, and the engine that
// turns file content into versions and back.
//
// Words:
//
//   - The Catalog (catalog.go) keeps inodes, directory entries, every version
//     of every regular file, and the files that were deleted but keep their
//     history. OpenBolt keeps it in an embedded bbolt database next to a
//     local store; versions/radosrepo keeps it in a RADOS pool.
//   - A Version is a committed state of a file: a recipe (a chunk holding the
//     encoded recipe.Recipe), a size and an mtime, under a VersionID that is
//     ordered by commit time. HEAD is the newest.
//   - A Repo joins a catalog, a chunk store and the store's config. Its Write
//     cuts content into chunks, stores the ones the store lacks, stores the
//     recipe and commits the version. WritePath does the same for a path,
//     making the file and its directories only after the content is stored,
//     so that a write that fails or is killed leaves the namespace as it
//     was. A file's content is cut on several cores (chunker.Split), a
//     stream's by one chunker; both give the same chunks.
//
// Ordering, which is what makes crashes lose nothing committed:
//
//   - Commit order is chunks → recipe → version entry. A crash before the
//     version entry leaves chunks nothing references: leaked space that gc
//     reclaims, never a version pointing at missing data.
//   - Removal order is version entry → chunks. Removing a version (or a
//     file) only touches the catalog; chunks are deleted later by gc, and
//     only when no version references them.
//
// Garbage collection is mark and sweep rather than reference counting: the
// live set is computed from the recipes of every version each time, so a
// retried or repeated commit can never count twice and a crash can never
// leave a count wrong. Chunks that a commit in progress has found in the
// store (or just put) are held in an in-process set until its version entry
// is written, and gc skips held chunks and chunks released while it ran.
// Only one process writes to a local store at a time (the store lock), so
// that set sees every commit that could race with gc.
//
// A store several machines write at once (a RADOS pool: the chunk store is
// a chunkstore.Toucher) cannot rely on that set: commits there Touch the
// chunks they reuse, gc records its start in the catalog (GCFencer) and
// deletes only chunks idle since its start less a margin, and a commit
// whose chunks a gc may have overtaken touches them again before its version
// entry goes in (DefaultGCMargin, and versions/radosrepo's documentation).
//
// The catalog logic (KVCatalog) runs over a small ordered key-value
// interface (KV): bbolt for a local store (OpenBolt), one RADOS object's
// omap for a pool (versions/radosrepo). Both pass versionstest.Run.
package versions
