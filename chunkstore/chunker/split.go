package chunker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/casfs/casfs/chunkstore"
)

// cutter finds where a chunk ends: cut is given the bytes from a cut point
// on, limit() of them or fewer only at the end of the stream, and returns
// the chunk's length (at least 1). Its answer depends on nothing else, which
// is what lets Split cut pieces of a stream independently.
type cutter interface {
	cut(data []byte) int
	limit() int
}

func (c *fastCDC) limit() int { return c.max }

// fixedCut is the fixed chunker's cut rule.
type fixedCut int

func (f fixedCut) cut(data []byte) int { return min(int(f), len(data)) }
func (f fixedCut) limit() int          { return int(f) }

func newCutter(cfg chunkstore.ChunkerConfig) (cutter, error) {
	switch cfg.Algorithm {
	case "fastcdc":
		return newFastCDCCut(cfg.Min, cfg.Avg, cfg.Max)
	case "fixed":
		return newFixedCut(cfg.Size)
	}
	return nil, fmt.Errorf("unknown chunker %q", cfg.Algorithm)
}

// splitBlock is how many bytes of the stream one of Split's goroutines cuts
// at a time, before rounding up to a multiple of the chunker's limit.
// Larger blocks waste less (each block re-cuts about one chunk where its
// neighbour's cuts and its own meet) and hold more memory.
const splitBlock = 16 << 20

// Split cuts the n bytes of r, from offset 0, into exactly the chunks that
// New(cfg, ...) cuts from the same bytes read in order, but with up to
// workers goroutines cutting at once (workers <= 0: one per core, at most
// four). It calls emit with each chunk in order, from the calling goroutine.
//
// A chunk's Data is a slice of a buffer Split reads into, and emit takes it
// over: it stays valid until emit's done is called, which emit must do
// exactly once, from any goroutine, even after Split returned. So chunks
// can be hashed and stored in parallel without a copy. Memory is bounded by
// workers+2 blocks of splitBlock bytes (plus a chunk's max), and the blocks
// of all Splits in the process by maxBlocks; emit blocking holds Split
// back.
//
// An error from emit or r, or ctx ending, stops Split, which returns that
// error once its goroutines have stopped. r holding fewer than n bytes is
// io.ErrUnexpectedEOF.
//
// How: the stream is cut in blocks, each block by one goroutine as if a
// chunk began at the block's start. That guess is usually wrong, but cuts
// are content-defined: once the true cuts (carried over from the block
// before) reach a cut the block's goroutine also made, all later ones
// agree, since a chunk's end depends only on where it begins. Split, in
// order, takes each block's cuts from the first one the true cuts reach,
// cutting in between itself (usually one or two chunks). On data where they
// never meet (long runs of zeros, cut only at max) it cuts the whole block
// itself, which costs time, never correctness.
func Split(ctx context.Context, cfg chunkstore.ChunkerConfig, r io.ReaderAt, n int64, workers int, emit func(c Chunk, done func()) error) error {
	c, err := newCutter(cfg)
	if err != nil {
		return err
	}
	return split(ctx, c, r, n, workers, splitBlock, emit)
}

// blocks holds the process's block buffers for Split, maxBlocks of them
// (nil until first used): every Split of more than one block takes two
// while it runs, and up to workers more while they are free, and gives
// them back when it returns. So the block buffers of all the Splits in a
// process (a mount committing large files side by side) stay within
// maxBlocks, whatever their number, and are reused rather than left to
// the garbage collector. A Split that cannot have its two waits for one
// that finishes. Two are enough to move (one block being cut, one whose
// chunks are being stored). Only one Split at a time may hold one while it
// waits for its second (reserving): the others wait holding none, so none
// waits on another in a circle.
const maxBlocks = 6

var (
	blocks    = make(chan []byte, maxBlocks)
	reserving = make(chan struct{}, 1)
)

func init() {
	for range maxBlocks {
		blocks <- nil
	}
}

// takeBlocks takes two block buffers, waiting for them, and up to extra
// more if they are free.
func takeBlocks(ctx context.Context, extra int) ([][]byte, error) {
	select {
	case reserving <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-reserving }()
	var taken [][]byte
	for range 2 {
		select {
		case b := <-blocks:
			taken = append(taken, b)
		case <-ctx.Done():
			giveBlocks(taken)
			return nil, ctx.Err()
		}
	}
	for len(taken) < 2+extra {
		select {
		case b := <-blocks:
			taken = append(taken, b)
		default:
			return taken, nil // no more free: two are enough
		}
	}
	return taken, nil
}

// giveBlocks gives back buffers takeBlocks took.
func giveBlocks(taken [][]byte) {
	for _, b := range taken {
		blocks <- b
	}
}

// block is one block of a Split: bytes [start, end) of the stream and up to
// a limit past them, and the cuts made from start.
type block struct {
	start, end int64
	buf        []byte  // bytes [start, start+len(buf))
	cuts       []int64 // start, then every cut up to the first at or past end
	err        error
	ready      chan struct{} // closed once buf is read and cuts made, or err set
	refs       atomic.Int32  // Split's own, plus one per emitted chunk not done
	free       func([]byte)
}

func (b *block) unref() {
	if b.refs.Add(-1) == 0 {
		b.free(b.buf)
	}
}

// split is Split with the cutter made and the block size given (tests use
// small ones).
func split(ctx context.Context, c cutter, r io.ReaderAt, n int64, workers, blockSize int, emit func(Chunk, func()) error) error {
	if n <= 0 {
		return nil
	}
	limit := c.limit()
	bs := int64(blockSize)
	if m := int64(limit); bs < 2*m {
		bs = 2 * m
	}
	bs = (bs + int64(limit) - 1) / int64(limit) * int64(limit) // fixed chunks then align with blocks
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	nblocks := (n + bs - 1) / bs
	if int64(workers) > nblocks {
		workers = int(nblocks)
	}

	// A stream of one block needs one buffer, as large as the stream (a
	// small file's commit takes a small one) from the chunkers' pool.
	// Longer ones take theirs from the process's block buffers.
	taken := [][]byte{nil}
	if nblocks > 1 {
		var err error
		if taken, err = takeBlocks(ctx, workers); err != nil {
			return err
		}
		workers = max(len(taken)-2, 1)
	}
	// buffers is the window: a block takes one to be read at all, and gives
	// it back once Split and every chunk emitted from it are done. It holds
	// the cutting goroutines' blocks, the one Split resolves and one more
	// whose chunks are still being stored.
	window := len(taken)
	buffers := make(chan []byte, window)
	for _, b := range taken {
		buffers <- b
	}
	// A freed buffer goes back to the window while Split runs. Once Split
	// has returned (its caller may still be storing a block's last
	// chunks), giveBack returns it straight to the process's block
	// buffers or the pool, so that none is lost and made again.
	giveBack := func(b []byte) {
		if nblocks > 1 {
			blocks <- b // never blocks: no more than maxBlocks exist
		} else {
			putBuf(b)
		}
	}
	var (
		returned   bool
		returnedMu sync.Mutex
	)
	free := func(b []byte) {
		returnedMu.Lock()
		defer returnedMu.Unlock()
		if returned {
			giveBack(b)
		} else {
			buffers <- b // never blocks: the window has room for all
		}
	}
	defer func() {
		returnedMu.Lock()
		defer returnedMu.Unlock()
		returned = true
		for {
			select {
			case b := <-buffers:
				giveBack(b)
			default:
				return
			}
		}
	}()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	jobs := make(chan *block)
	order := make(chan *block, window)
	var cur *block // taken from order, Split's own ref not yet dropped
	defer func() {
		cancel() // first, so that every goroutine stops
		wg.Wait()
		// Blocks left when Split stops early give their buffers back
		// (once their chunks are done, if any were emitted).
		if cur != nil {
			cur.unref()
		}
		for b := range order {
			b.unref()
		}
	}()
	wg.Add(1)
	go func() { // hands out blocks in order, as buffers come back
		defer wg.Done()
		defer close(jobs)
		defer close(order)
		for start := int64(0); start < n; start += bs {
			var buf []byte
			select {
			case buf = <-buffers:
			case <-ctx.Done():
				return
			}
			b := &block{start: start, end: min(start+bs, n), ready: make(chan struct{}), free: free}
			need := int(min(b.end+int64(limit), n) - start)
			switch {
			case cap(buf) >= need:
			case nblocks == 1:
				buf = getBuf(need) // only what the stream needs
			default:
				// A block buffer, made for any block of this size (one
				// from a store with smaller chunks is dropped).
				buf = make([]byte, bs+int64(limit))
			}
			b.buf = buf[:need]
			b.refs.Store(1)
			order <- b // never blocks: at most window blocks hold buffers
			select {
			case jobs <- b:
			case <-ctx.Done():
				b.err = ctx.Err()
				close(b.ready)
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				b.err = b.cutAll(ctx, c, r, n)
				close(b.ready)
			}
		}()
	}

	var pos int64 // the last true cut
	for b := range order {
		cur = b
		select {
		case <-b.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.err != nil {
			return b.err
		}
		err := b.resolve(c, &pos, emit)
		cur = nil
		b.unref()
		if err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if pos != n {
		return fmt.Errorf("chunker: split ended at %d of %d bytes", pos, n) // a bug, never data
	}
	return nil
}

// cutAll reads the block and cuts it from its start.
func (b *block) cutAll(ctx context.Context, c cutter, r io.ReaderAt, n int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m, err := r.ReadAt(b.buf, b.start)
	if m == len(b.buf) {
		err = nil // io.EOF with every byte asked for is no error
	} else if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("reading bytes %d-%d of %d: %w", b.start, b.start+int64(len(b.buf)), n, err)
	}
	b.cuts = append(b.cuts[:0], b.start)
	for pos := b.start; pos < b.end; {
		pos += int64(b.cutAt(c, pos))
		b.cuts = append(b.cuts, pos)
	}
	return nil
}

// cutAt cuts the chunk that begins at stream offset pos, inside the block.
func (b *block) cutAt(c cutter, pos int64) int {
	lo := int(pos - b.start)
	return c.cut(b.buf[lo:min(lo+c.limit(), len(b.buf))])
}

// resolve emits the block's chunks, carrying the true cuts from *pos (a cut
// inside the block, or past it) to the first at or past the block's end.
func (b *block) resolve(c cutter, pos *int64, emit func(Chunk, func()) error) error {
	p := *pos
	send := func(from, to int64) error {
		b.refs.Add(1)
		data := b.buf[from-b.start : to-b.start : to-b.start]
		return emit(Chunk{Offset: from, Data: data}, b.unref)
	}
	j := sort.Search(len(b.cuts), func(i int) bool { return b.cuts[i] >= p })
	for p < b.end {
		if j < len(b.cuts) && b.cuts[j] == p {
			// In step with the block's own cuts: from here on they are
			// the true ones.
			for ; j+1 < len(b.cuts); j++ {
				if err := send(b.cuts[j], b.cuts[j+1]); err != nil {
					return err
				}
			}
			p = b.cuts[len(b.cuts)-1]
			break
		}
		next := p + int64(b.cutAt(c, p))
		if err := send(p, next); err != nil {
			return err
		}
		p = next
		for j < len(b.cuts) && b.cuts[j] < p {
			j++
		}
	}
	*pos = p
	return nil
}
