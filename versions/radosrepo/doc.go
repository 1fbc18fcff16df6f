//go:build ceph

// Package radosrepo keeps a whole casfs store in a Ceph RADOS pool, so that
// any machine with the pool and credentials can mount it, and several can at
// once: `casfs mount rados://POOL[/NAMESPACE] /mnt/cas`. Importing it (built
// with -tags ceph) registers the "rados" scheme in versions.Backends.
//
// # Layout
//
// In the store's namespace (the pool's default one, or NAMESPACE):
//
//	casfs.config    the store's config (chunkstore/rados), written last by
//	                init: a namespace with it is a complete store
//	casfs.catalog   the catalog (versions.KVCatalog) in the object's omap,
//	                one omap key per catalog key (see omapKV)
//
// and in NAMESPACE.chunks (or "chunks"), one object per chunk and recipe,
// named by its ID (chunkstore/rados).
//
// # Atomic, idempotent, and safe with several machines
//
// Every catalog change (a create, a rename across directories, a commit) is
// one KVCatalog transaction, and each transaction is one RADOS write op on
// the catalog object, guarded by the object version its reads saw
// (AssertVersion): the OSD applies all of its omap changes or, if another
// machine changed the catalog first, none, and the transaction runs again on
// fresh reads. So namespace changes from several mounts at once never lose
// an entry, and a crash between any two RADOS operations leaves the catalog
// as it was before or after each change.
//
// Commits keep the order chunks → recipe → version entry; removals drop the
// version entry and leave chunks to gc.
//
// Garbage collection is mark and sweep, so there are no reference counts to
// get wrong: a retried or repeated operation can never count twice, and a
// crash never leaves a count behind. What makes it safe with commits running
// on other machines (whose in-process holds it cannot see) is time, fenced
// through the catalog (versions.DefaultGCMargin, versions.GCFencer,
// chunkstore.Toucher):
//
//   - a commit Touches every chunk it reuses (an xattr write, which moves
//     the object's mtime) and Puts the ones missing, all after its start;
//   - gc records its start T in the catalog before it marks, and deletes an
//     unreferenced chunk only with a remove guarded by the object version
//     it saw when it found the chunk's mtime before T-margin;
//   - a commit's version entry is written only if no gc started after the
//     commit's start plus the margin; otherwise it touches its chunks again
//     (putting again any that went) and retries.
//
// A commit that gc's mark did not see came after the fence, so it started
// after T-margin and its chunks were touched or put after that: none of them
// looks idle. A chunk deleted before the commit's Touch makes the Touch fail
// and the commit put it again; a Touch between gc's stat and its remove
// changes the version and the remove does nothing. This holds as long as the
// machines' clocks are less than the margin (an hour by default) apart.
//
// # Several mounts
//
// Mounts share nothing but the pool. A mount reads attributes and HEAD from
// the catalog (the kernel caches them for the mount's 1 s attribute
// timeout), and an open of a file whose HEAD moved since this mount last
// saw it drops the kernel's cached pages, so a file closed on one mount
// reads with its new content on another within about a second.
package radosrepo
