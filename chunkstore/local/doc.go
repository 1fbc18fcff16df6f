// Package local is the chunkstore.Store that keeps chunks in a directory on
// this machine: casfs's default, embedded store.
//
// # Layout
//
// Under the store directory:
//
//	config              the store's chunkstore.Config, JSON, written once by Init
//	lock                flock'ed by the one process that has the store open;
//	                    holds JSON describing that process
//	chunks/ab/cd/<id>   one file per chunk, named by the 64-digit hex ID, in
//	                    two levels of shards taken from the ID's first bytes
//	tmp/                temp files of Puts in flight
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
// Put writes the chunk to a temp file in tmp/ (same filesystem, so the final
// rename is atomic), fsyncs it, renames it to its place and fsyncs the shard
// directory so the name survives a crash too. A chunk file is therefore either
// absent or whole. A crash can leave temp files behind; Open removes them,
// which is safe because it holds the exclusive lock and so no Put is in
// flight. Delete does not fsync: a delete lost in a crash leaves garbage that
// the next collection removes again.
//
// Files are created mode 0600 and directories 0700: the store holds the
// content of every file of every user, and reaches users only through a
// mount, which applies the files' own permissions.
package local
