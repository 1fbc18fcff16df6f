// Package local is the chunkstore.Store that keeps chunks in a directory on
// this machine: casfs's default, embedded store. It has two layouts, named
// by the config (OpenDir opens either): packs (PackStore, the default for
// new stores since format 2) and a file per chunk (Store, format 1). Each
// section below is about the files layout unless it says otherwise; "Packs"
// describes the other.
//
// # Layout
//
// Under the store directory (files layout):
//
//	config              the store's chunkstore.Config, JSON, written once by Init
//	lock                flock'ed by the one process that has the store open;
//	                    holds JSON describing that process
//	chunks/ab/cd/<id>   one file per chunk, named by the 64-digit hex ID, in
//	                    two levels of shards taken from the ID's first bytes
//	tmp/                temp files: chunks put but not yet synced
//
// The config file is what makes a directory a store: Init writes it last, and
// Open refuses a directory without one (ErrNoStore) or with a config of an
// unknown or newer format (chunkstore.ErrUnknownFormat). Two levels of 256
// shards keep each directory small (about 15 files per leaf at a million
// chunks), which keeps lookups and listings fast on every filesystem.
//
// # Locking
//
// A store is used by one process at a time: Open takes flock(LOCK_EX|LOCK_NB)
// on the lock file and fails at once with an error matching ErrLocked, naming
// the holder, if another process (or another Open in this process: flock
// belongs to the open file, not the process) has it. Read-only opens take the
// same exclusive lock. That is the simple safe choice: the metadata database
// kept next to the chunks is single-writer, and a reader beside a writer would
// need a second locking protocol to see consistent versions.
//
// The kernel drops a flock when the file is closed, including when its
// process is killed, so a crashed casfs never leaves a stale lock to clean up
// by hand; the holder info left in the file is only read while someone holds
// the lock, and is then that holder's own. (On network filesystems flock is
// only as good as the filesystem's lock support; keep a store on a local
// disk.)
//
// # Crash safety
//
// The rule everything rests on: a file under a chunk name is always whole
// and durable. Has reports a chunk present, and a commit then deduplicates
// against it rather than storing it again, so a name over missing bytes
// would let a later version lose data without anyone writing it wrongly.
//
// Making every chunk durable on its own (fsync the file, rename, fsync the
// directory) kept the rule but cost most of the time of storing new data, so
// durability is a barrier instead (chunkstore.Store's Sync):
//
//   - Put writes the chunk to a new temp file in tmp/ (same filesystem, so
//     a rename out of it is atomic), asks the kernel to start writing it
//     back (sync_file_range), and records it in an in-memory pending set.
//     It does not wait for the disk. Has, Get, List and Delete look in the
//     pending set before the shards, so a pending chunk is as visible as a
//     named one.
//   - Sync takes the pending set as it is when Sync starts, makes the data
//     of those temp files durable with one syncfs(2) of the filesystem,
//     renames them to their chunk names, and makes the renames durable with
//     a second syncfs. Names thus only ever appear for bytes already on
//     disk; a crash at any point leaves each chunk either whole under its
//     name or, at most, in tmp/.
//   - Open sweeps tmp/: temp files there belong to a process that died
//     before syncing them, and since Open holds the exclusive lock no Sync
//     is in flight. Chunks put but never synced are thus forgotten, which
//     is right: no version that a Sync did not precede can reference them.
//
// One Sync runs at a time, and one that had to wait usually finds its chunks
// synced already, so concurrent commits share the cost. A Sync of a Store
// that has not synced yet always syncs the filesystem, even with nothing
// pending, since an earlier process killed between its renames and its
// second sync may have left names that are not durable yet. If a sync call
// fails, the kernel may already have dropped the pages it could not write,
// so the store can no longer tell what is durable: that Sync and every later
// one fail until the store is reopened. A failed rename is not like that;
// its chunk stays pending and the next Sync tries again. Put syncs by itself
// when 16,384 chunks are pending, which bounds the pending set's memory and
// tmp/'s size for a very long commit. Close syncs what is pending.
//
// syncfs also writes back other programs' dirty data on the same
// filesystem, which a commit then waits for. Before Linux 5.8 syncfs did not
// report write errors, so on those kernels Sync fsyncs each temp file and
// each shard directory it renamed into instead (more calls, same order).
//
// Every syncfs goes through the lock file's descriptor, open from Open to
// Close: the kernel reports a writeback error once per descriptor, so one
// opened for the call after another program's syncfs had seen the error
// would never hear of it. While a long commit is being put, Put also starts
// a syncfs in the background every 16 MiB, so that its data and journal
// work are mostly done when its Sync comes (a put of 1 GiB of new data took
// about a third less time). Those promise nothing; the first error one sees
// is kept, and every later Sync fails with it, since it was taken from the
// descriptor the Sync would have seen it on.
//
// Delete does not sync: a delete lost in a crash leaves garbage that the
// next collection removes again. Shard directories are made by Put as
// needed and never removed, and become durable with the names in them.
//
// Files are created mode 0600 and directories 0700: the store holds the
// content of every file of every user, and reaches users only through a
// mount, which applies the files' own permissions.
//
// # Packs
//
// A file per chunk costs a file creation (and a shard directory, and a
// rename) per chunk stored, and a file open per chunk read; at ~0.75 MiB a
// chunk that is ~1,400 of each per GiB, and on this project's machines most
// of the system time of a put and of a cold read. The packs layout keeps
// chunks in a few large files instead:
//
//	config, lock, tmp/  as above (config says "layout": "packs", format 2)
//	packs/NNNNNNNN.pack chunk records appended one after another, numbered
//	                    in hex; a new pack is started at 256 MiB
//	index.db            bbolt: chunk ID → (pack, offset, length); per pack
//	                    the number of indexed records in it; the watermark
//
// A record is a 44-byte header (magic "cpk1", data length, chunk ID, and a
// CRC-32C of those and the data) and the data, starting at a multiple of
// 4 KiB, so that punching a record out frees exactly its blocks. A file's
// chunks are appended in order, so reading the file back reads its pack
// sequentially.
//
// A record is read with one pread of its whole span. If its pages are not
// in the page cache (cachestat(2)), the read is direct (O_DIRECT, a second
// descriptor per pack), straight into the chunk's buffer: the layers above
// keep what they read (the chunk cache, and the kernel's cache of the
// mounted file), so the pack's pages would only be a third copy, and
// filling them cost a fifth of a cold read's CPU. A record in the page
// cache, or with pages not yet written back, is read through it; so is one
// whose buffer is not aligned as the filesystem asks (statx
// STATX_DIOALIGN), and every record on a filesystem without direct I/O.
//
// The packs are a log, and the index a checkpoint of it. The rules: a
// record is a chunk once an fdatasync has made it durable; the index only
// ever points at such records, never at freed blocks; and every durable
// record the index lacks lies past the watermark, where Open looks for it.
//
//   - Put appends the record (pwritev at an offset reserved under a mutex,
//     so Puts write in parallel) and records the chunk as pending: Has, Get
//     and List see it at once. Every 16 MiB it starts the pack's writeback
//     (sync_file_range), drops clean pages far behind from the page cache,
//     and every 32 MiB it fdatasyncs the pack in the background: the host's
//     cache flush behind an fdatasync is slow here, and one at the end of a
//     1 GiB put kept the disk idle for a third of the put.
//   - Sync fdatasyncs the packs written since the last Sync (and the packs
//     directory if it has a new name). That is all a commit of new chunks
//     waits for: one fdatasync, where an index transaction would add two
//     more (bbolt syncs its pages, then its meta page), which made creating
//     small files on a mount slower than with a file per chunk.
//   - A checkpoint writes the pending puts to the index in one bbolt
//     transaction, with the watermark moved to the end of the current
//     pack. Close makes one, and so do Put and Sync once 4,096 puts or 512
//     MiB of records are pending (which bounds the memory of the pending
//     set, and what Open may have to read back after a crash). It holds every Put off meanwhile,
//     so no record below the new watermark is half written or unrecorded.
//   - Open, after a crash, scans the packs from the watermark on and
//     indexes every whole record (its CRC matches) of a chunk the index
//     lacks: the chunks of Syncs no checkpoint followed. A record torn by
//     the crash fails its CRC and is skipped, as are holes (SEEK_DATA).
//     What a crash leaves is thus at worst records nothing uses (leaked
//     space, which gc finds), never a chunk name over broken bytes.
//   - Delete is pending too (Has and Get no longer see the chunk). The next
//     Sync removes the entry from the index in a transaction, and only after
//     it punches the record out (fallocate PUNCH_HOLE); a crash in between
//     leaves the record's blocks allocated, nothing worse (a deleted chunk
//     past the watermark may be found again by Open: leaked, as above). A
//     pack whose indexed records are all gone is removed at the next Open.
//   - Open never appends to an existing pack (a crash may have left
//     unindexed bytes at its end): a process's Puts start a new pack.
//
// Every read checks the record's header against the index (magic, length,
// ID), so an index entry over the wrong bytes is a CorruptError naming the
// pack and offset; the Encoded layer above checks the data's fingerprint.
// A failed fdatasync, in a Sync or in the background, makes that Sync and
// every later one fail until the store is reopened, as for the files layout.
// TestPackSyncOrdering checks the order of the steps, TestPackRecovery and
// TestPackCrashKill what a crash leaves.
package local
