// Package cache keeps recently read chunks in memory, bounded in bytes.
//
// Chunks are immutable and named by their content, so a cached chunk is
// never stale: the only questions are how much to keep and how to avoid
// fetching one chunk several times when several readers want it at once.
// Cache answers both: an LRU bounded by the total length of the chunks it
// holds (not their number, as chunks range from bytes to megabytes), and a
// single in-flight fetch per chunk that every concurrent reader waits on.
// Prefetch joins that scheme without adding waiters: it starts a fetch only
// for a chunk that is neither cached nor in flight, and only while fewer
// prefetches than the store serves in parallel are under way, so a
// sequential reader asking for the same window at every read costs a map
// lookup per chunk, not a goroutine. Those fetches outlive the reads that
// started them, so the cache's owner calls Close, which waits for them,
// before it closes the store behind the cache.
//
// The LRU is scan-resistant in one simple way. A file read sequentially
// that is larger than the whole cache would, in a plain LRU, push out
// everything else and still find none of its own chunks on a second pass;
// its reader asks for PlaceStream instead, which keeps its chunks in a
// small window of their own (a sixteenth of the cache, 64 MiB at least)
// whose buffers are reused as it slides. A sequential reader of a file
// between the window and the cache in size asks for PlaceScan: its chunks
// fill room the cache has free, and once there is none its first pass goes
// through the window too, and a second caches the file. Files no larger
// than the window, and random readers, are cached as any other.
//
// Chunks enter the cache only from the verified store (chunkstore.Encoded
// checks every chunk against its fingerprint), so what the cache hands out
// has been verified once; it hands out shared, read-only slices, which is
// what lets a 4 KiB read of a 1 MiB chunk cost a 4 KiB copy, and the mount
// reply to a read with the cached bytes themselves.
package cache
