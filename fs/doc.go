// Package fs serves a casfs store as a FUSE filesystem with go-fuse's node
// API.
//
// The live tree mirrors the catalog: every directory, file and symlink is a
// node whose inode number is the catalog's stable Ino (never derived from
// content, so equal files are not taken for hard links).
//
// Reads of a file go through HEAD's recipe: the extents for a range are
// found by binary search, holes read as zeros, and chunks come from a
// bytes-bounded in-memory cache that fetches each chunk once however many
// readers want it. Nothing is locked per handle, so parallel reads of one
// file proceed in parallel; a sequential reader triggers prefetch of the
// chunks that follow. A read is answered with the cached chunks' own bytes
// (one writev, no copy in casfs), held by the reply until go-fuse has
// written it: the cache reuses the memory of evicted chunks, and only a
// chunk nobody holds gives its buffer back. A sequential reader of a file
// larger than the cache's stream window reads it through that window, the
// first time for a file the cache could hold and every time for one it
// could not (see FS.place and cache.Cache).
//
// Writes go to a staging file per open file, in the staging directory. The
// first handle opened for writing creates it (filled with HEAD unless
// O_TRUNC); every handle of the file reads and writes it while it exists.
// When close(2) returns (FUSE FLUSH, which the kernel waits for, unlike the
// later RELEASE) or fsync returns, a changed staging file has been chunked
// and committed as a new version, so a program that closed a file and then
// crashed, or a casfs killed right after, loses nothing. A close with no
// change since the last commit commits nothing; several descriptors of one
// file make one version per close that follows a change. A handle opened
// write-only bypasses the kernel's page cache (FOPEN_DIRECT_IO), so its
// bytes fill no page but the staging file's; casfs then clears setuid and
// setgid on writes itself, as the kernel does for cached ones.
//
// copy_file_range between files of the mount is answered in the server
// (copy.go): bytes go from the source's read path to the destination's
// staging file, and a whole committed file copied into an empty one takes
// the source's recipe as its prefix, so its commit reuses the chunks.
// SEEK_DATA and SEEK_HOLE are answered from the staging file or the recipe
// (seek.go), and st_blocks counts a file's bytes without its holes.
//
// .versions/ at the root is hidden from listings but reachable by name, like
// ZFS's .zfs: .versions/<dir>/ lists the directory's entries, live and
// deleted, and .versions/<file>/ lists every version of the file as a
// read-only file named name.<version id>.ext. Everything under it is EROFS
// to writers.
//
// Lock order: fileNode.mu, then the catalog's own locking. Catalog errors
// become errno in exactly one place, errno.go.
package fs
