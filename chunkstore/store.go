package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store keeps chunks by ID. See the package documentation for the contract
// (idempotent Put, read-after-write, whole-or-nothing writes, typed errors);
// chunkstoretest.Run checks it. Every method that can block takes a context
// first and returns early with ctx.Err() once it is done.
//
// The bytes a Store keeps are whatever the caller puts: a raw backend keeps
// them verbatim, while the Encoded decorator compresses and frames plain chunk
// data and verifies it on the way back.
type Store interface {
	// Put stores data under id. data is not retained after Put returns.
	// The chunk is visible at once (Has, Get and List see it) but need
	// not be durable until Sync.
	Put(ctx context.Context, id ID, data []byte) error
	// Get returns the bytes stored under id. The caller owns the slice.
	Get(ctx context.Context, id ID) ([]byte, error)
	// Has reports whether id is stored.
	Has(ctx context.Context, id ID) (bool, error)
	// Delete removes id. A missing id gives an error matching ErrNotFound.
	Delete(ctx context.Context, id ID) error
	// List calls fn once for each stored chunk, in no particular order,
	// and stops at the first error fn returns, returning it.
	List(ctx context.Context, fn func(Info) error) error
	// Sync is the durability barrier. Once it returns nil, every chunk
	// that, before Sync was called, a Put of this Store returned nil for
	// or a Has, Get or List of it reported present survives a crash of
	// the process or the machine, unless it was deleted since. Sync does
	// not wait for Puts still running when it is called.
	//
	// Callers that record a reference to chunks somewhere durable (a
	// version entry in the catalog) call Sync in between, so that the
	// reference can never outlive the chunks. One Sync covers any number
	// of Puts, which is the point: a store may batch the expensive part.
	// A store whose Puts are durable when they return only checks ctx.
	//
	// After a Sync fails, the store cannot tell which chunks are durable
	// and may fail every later Sync; see the store's documentation.
	Sync(ctx context.Context) error
	// Properties describes what the store can do.
	Properties() Properties
	// Close releases the store, first making durable what Sync would.
	// Using it after Close is a bug.
	Close() error
}

// Info describes one stored chunk as seen by List.
type Info struct {
	ID   ID
	Size int64 // bytes as stored (after compression and framing)
}

// Properties are a store's capabilities, so callers can tune themselves
// without knowing which backend they talk to.
type Properties struct {
	// Name is a human-readable location, e.g. "local:/srv/cas".
	Name string
	// Concurrency is how many calls it is useful to have in flight at once.
	Concurrency int
	// MaxChunkSize is the largest chunk the store accepts, 0 for no limit.
	MaxChunkSize int64
	// Local is true when the data sits on this machine's disk, so a stale
	// lock can be judged by a process ID.
	Local bool
}

// ErrNotFound is matched (errors.Is) by errors for IDs that are not stored.
var ErrNotFound = errors.New("chunk not found")

// ErrUnavailable is matched (errors.Is) by errors of a remote store that did
// not answer in time (a cluster down or unreachable). The operation may
// work if tried again later; nothing was changed by it, or it was applied
// whole (stores never apply part of an operation).
var ErrUnavailable = errors.New("store unavailable")

// ErrCorrupt is matched (errors.Is) by every *CorruptError.
var ErrCorrupt = errors.New("chunk corrupt")

// CorruptError reports a chunk whose stored bytes cannot be decoded or do not
// hash to its ID. It never comes with data.
type CorruptError struct {
	ID     ID
	Where  string // location of the stored chunk, e.g. a file path, if known
	Reason string
}

func (e *CorruptError) Error() string {
	s := fmt.Sprintf("chunk %s is corrupt: %s", e.ID, e.Reason)
	if e.Where != "" {
		s += " (" + e.Where + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrCorrupt) true for a *CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// NotFound returns an error for id that matches ErrNotFound.
func NotFound(id ID) error { return fmt.Errorf("chunk %s: %w", id, ErrNotFound) }

// Toucher is implemented by stores that several processes write to at once
// (a RADOS pool mounted on several machines). There, a commit's in-process
// hold on a chunk cannot stop another machine's garbage collection, so
// casfs protects chunks by time instead:
//
//   - A commit that relies on a chunk already stored Touches it, and one
//     that stores a chunk Puts it: either way the chunk's change time is
//     now. The commit writes its version entry within a bounded time of
//     its first Touch or Put, or touches its chunks again.
//   - Garbage collection marks from the catalog, then deletes a chunk
//     nothing references only with DeleteIfIdle(id, start-margin), which
//     leaves any chunk put or touched since then in place.
//
// A commit whose version gc's mark missed began after start-margin, so
// every chunk it relies on was touched or put after that and survives; a
// chunk gc deleted before the commit touched it makes the Touch report
// false, and the commit puts it again. versions.Repo documents the margin.
type Toucher interface {
	// Touch records that id is in use now. It reports false, changing
	// nothing, if id is not stored.
	Touch(ctx context.Context, id ID) (bool, error)
	// DeleteIfIdle deletes id unless it was put or touched at or after
	// since, as one atomic step: a Touch that races with it either comes
	// first and keeps the chunk, or comes after and reports false. It
	// reports whether it deleted; a missing id gives an error matching
	// ErrNotFound.
	DeleteIfIdle(ctx context.Context, id ID, since time.Time) (bool, error)
}
