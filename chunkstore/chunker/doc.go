// Package chunker cuts a stream of file content into chunks, the units that
// casfs stores, names by their hash and deduplicates.
//
// Two chunkers exist, named in a store's chunkstore.ChunkerConfig:
//
//   - "fixed" cuts every Size bytes. It is cheap, but an insertion or
//     deletion shifts every later byte, so every later chunk changes and
//     nothing after an edit deduplicates.
//   - "fastcdc" is content-defined: where it cuts depends on the bytes
//     themselves, so after an edit the cuts fall back in the same places
//     relative to the content, and all chunks but the one or two around the
//     edit are ones the store already holds. This is the default.
//
// # Words
//
// A cut point is the position where one chunk ends and the next begins.
// FastCDC (Xia et al., "FastCDC: a Fast and Efficient Content-Defined
// Chunking Approach for Data Deduplication", USENIX ATC 2016) finds cut
// points with a gear hash: for each byte x, fp = fp<<1 + gear[x], where gear
// is a table of 256 random 64-bit words. Because of the shift, a byte's
// influence leaves the top bit of fp after 64 more bytes, so fp is a rolling
// hash of the last 64 bytes at the cost of a shift, a table load and an add.
// A position is a cut point when fp has zero in every bit of a mask; a mask
// of b bits matches once every 2^b bytes on average.
//
// Cut-point skipping: no chunk may be shorter than min, so the first min
// bytes of each chunk are not hashed at all; the hash starts from zero at
// min. On the default parameters that skips a quarter of the input, and it
// is part of why FastCDC is fast.
//
// Normalized chunking: rather than one mask of log2(avg) bits, FastCDC uses
// a harder mask (log2(avg)+2 bits, "normalization level 2") between min and
// avg, and an easier one (log2(avg)-2 bits) between avg and max. Cuts before
// avg become rare and cuts after it likely, so chunk sizes cluster around
// avg: few tiny chunks (overhead per chunk) and few chunks forced to end at
// max (a forced cut is not content-defined and resynchronises poorly).
// casfs takes the masks from the top bits of fp, the bits that depend on a
// full 64-byte window. If avg is not a power of two, the masks use the power
// of two below it.
//
// Chunk sizes are min <= size <= max, except that the last chunk of a stream
// may be shorter than min. A chunk is never empty, and an empty stream has
// no chunks.
//
// # Chunk sizes
//
// A new store's default is min 160 KiB, avg 640 KiB, max 2560 KiB (see
// chunkstore.DefaultConfig for why); the first default, which the golden
// tests keep, was 256 KiB, 1 MiB and 4 MiB. Each chunk costs an entry in a
// file's recipe, an index lookup and, on a remote store, a round trip; at
// ~0.75 MiB a 1 GiB file is about 1400 chunks. Smaller chunks find more
// duplicates inside files that change in many small places, but an edit
// costs re-storing about one average chunk. Larger chunks also compress
// better, since zstd sees more context.
//
// # Boundaries are on-disk format
//
// Deduplication works only if the same bytes are cut in the same places by
// every casfs that ever writes to a store, today's and next year's. The
// gear table, the masks, the normalization level, the cut rule and the
// handling of min and max therefore belong to the store's format just as
// much as the chunk encoding does: change any of them and new writes stop
// matching old chunks. Nothing becomes unreadable, but every file written
// again is stored again in full. So a store records its chunker and its
// sizes in its config at init, and the code here never changes the
// boundaries it produces for a given config. A new way to cut is a new
// algorithm name. The golden tests in this package pin the gear table and
// the boundaries on fixed data, and must never be updated to follow a code
// change.
//
// That is also why the chunker is written here rather than imported: the
// algorithm is a few dozen lines, and a dependency's upgrade, fix or
// "improvement" to its table or its cut rule would silently change our
// format. We want to own it.
//
// # Memory and the Chunk contract
//
// A chunker holds one buffer (about two max sizes for fastcdc, one Size
// for fixed) whatever the stream's length, and each Chunk's Data is a slice
// of that buffer, valid only until the next call to Next. Callers that keep
// the bytes must copy them. The chunker reads with as many Read calls as it
// takes, so boundaries do not depend on how the reader slices the stream.
// Next returns io.EOF after the last chunk, and a read error as soon as it
// needs the data that failed, unwrapped, and again on every later call.
//
// # Cutting on several cores
//
// FastCDC is one loop with a one-cycle dependency per byte, so one
// goroutine cuts about 2 GB/s here, and putting data a store already holds
// was bound by it. Split cuts a stream it can read at any offset (a file)
// in blocks of 16 MiB on several goroutines, and produces exactly the
// chunks a Chunker would. That works because a cut depends only on where
// its chunk begins and the bytes after: a block cut as if a chunk began at
// its start falls in step with the true cuts at the first cut both make,
// usually within a chunk or two. Split hands its read buffers to the caller
// chunk by chunk (no copy) and takes them back when the caller is done.
// Those buffers come from a set of six for the whole process, so that a
// mount committing several large files at once holds six blocks, not six
// per file.
package chunker
