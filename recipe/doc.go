// Package recipe describes how a file version is put together from chunks.
//
// A Recipe is the file size plus a list of extents (offset, size, chunk ID)
// sorted by offset and never overlapping. Bytes of the file not covered by any
// extent are a hole and read as zeros; this is how runs of zeros cost nothing.
// Every extent covers a whole chunk: the chunk's length is the extent's size.
//
// Recipes are stored as chunks themselves (content-addressed, compressed and
// verified like any chunk), in the versioned binary encoding of Encode. Decode
// accepts every version it knows and refuses, with an error and never a panic,
// anything else.
package recipe
