// Package chunkstoretest is the conformance suite for chunkstore.Store: every
// backend and every decorator runs the same checks, in one line from its own
// tests, so the contract in package chunkstore's documentation is tested once
// and means the same thing everywhere.
//
// Words:
//
//   - open is the test's factory. Each call returns a new, empty Store that
//     the suite owns: the suite closes it when the subtest ends.
//   - reopen (RunReopen only) closes a Store and returns another one on the
//     same location, to check that what one instance wrote another reads.
//     Stores that hold an exclusive lock (package local) cannot have two
//     instances open at once, so the check is "close, then open again".
//
// The suite checks Sync as far as one process can see it: that it succeeds
// with and without pending work, that it changes nothing readers see, and
// that it is safe beside concurrent Puts, Gets and Deletes. Whether synced
// chunks survive a crash depends on the medium; stores test that themselves
// (package local kills a child process mid-write and checks the ordering of
// its syncs and renames).
//
// Chunk IDs in the suite are real fingerprints (chunkstore.HashBLAKE3.Sum of
// the data) so the suite also runs over decorators that verify content, such
// as chunkstore.NewEncoded. Data is pseudo-random from a fixed seed, so a
// failure reproduces.
package chunkstoretest
