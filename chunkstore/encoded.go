package chunkstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Encoded framing. Every chunk an Encoded store writes is
//
//	byte 0     frame version (encodingV1)
//	byte 1     codec id (codecRaw, codecZstd, ...)
//	uvarint    length of the plain chunk
//	payload    the chunk as the codec left it
//
// The frame version lets a later casfs change the header itself; the codec id
// lets one store hold chunks written under different compression settings.
// Both tables are append-only: a retired codec keeps its id and stays
// readable forever, because chunks written with it live as long as the store.
// The plain length lets Get bound and check decompression before hashing.
const encodingV1 = 1

// Codec ids. Append only; never reuse a number.
const (
	codecRaw  byte = 0 // payload is the plain chunk
	codecZstd byte = 1 // payload is one zstd frame, without zstd's checksum
)

// maxHeaderSize is the largest header encodingV1 writes.
const maxHeaderSize = 2 + binary.MaxVarintLen64

// zstdLevel is the encoder level for new chunks. Measured on this project's
// 2-core build machine (go test -run x -bench Zstd -benchtime 100x
// ./chunkstore; 1 MiB chunks, one core, noisy shared machine):
//
//	              Go sources (net/http)   synthetic text          random
//	SpeedFastest  ~190 MB/s, 28.5% size   ~175 MB/s, 30.4% size   ~7 GB/s, stored raw
//	SpeedDefault  ~140 MB/s, 26.1% size   ~135 MB/s, 27.9% size   ~4 GB/s, stored raw
//	decode        ~1.2 GB/s               ~1.0 GB/s
//
// Default is chosen: it saves 2.5 points of size, which decides the
// comparison that matters to users (on the versions benchmark of
// docs/BENCHMARKS.md, casfs at Fastest stored 10% more than restic, whose
// "auto" is zstd's default level). It costs a 1.3× slower put of
// compressible data only: incompressible chunks are recognised from a
// sample and skip compression (see compressible), so new random data still
// puts at the full speed of hashing and writing.
const zstdLevel = zstd.SpeedDefault

// zstdCoders are shared by every Encoded store: EncodeAll and DecodeAll are
// safe for concurrent use, and each encoder holds megabytes of tables, so one
// set per process is the right number. They are made on first use so that
// programs that never touch chunk data (a config check) do not pay for them.
var zstdCoders = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstdLevel),
		// Get verifies the chunk's fingerprint, which is stronger than
		// zstd's own checksum and makes it redundant work.
		zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
	)
	if err != nil {
		panic(fmt.Sprintf("chunkstore: zstd encoder: %v", err))
	}
	dec, err := zstd.NewReader(nil,
		// Refuse frames that claim more than a chunk can hold, before
		// allocating for them; a corrupt header must not exhaust memory.
		zstd.WithDecoderMaxMemory(MaxChunkSize),
		// DecodeAll must not grow the buffer Get sized from the header.
		zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
	)
	if err != nil {
		panic(fmt.Sprintf("chunkstore: zstd decoder: %v", err))
	}
	return enc, dec
})

// encoded is the Store NewEncoded returns. It embeds the inner store so that
// Has, Delete, List and Close pass straight through.
type encoded struct {
	Store
	hash     Hash
	compress bool
}

// NewEncoded wraps inner, a store of opaque bytes, into a store of plain
// chunks: Put compresses (when compression is CompressionZstd and it pays)
// and frames; Get unframes, decompresses and verifies that the plain bytes
// hash to the ID under hash.
//
// Get returns a *CorruptError, never data, for anything that does not decode
// to the chunk named by its ID: a bad header, an unknown codec, a zstd error,
// a wrong length or a fingerprint mismatch. Errors from inner, such as
// ErrNotFound, come back unchanged in meaning.
//
// Put does not hash: the caller has just computed the ID from the same bytes,
// and hashing again (~0.25 ms per MiB) would double the CPU a put of
// incompressible data costs. A caller bug that
// puts data under the wrong ID is still caught, by the next Get of that ID,
// which reports the chunk corrupt rather than returning the wrong data.
//
// compression only decides how new chunks are written; Get reads every codec
// this build knows, so a store can change setting without rewriting.
func NewEncoded(inner Store, hash Hash, compression string) (Store, error) {
	if !hash.Valid() {
		return nil, fmt.Errorf("%w: hash %q", ErrUnknownFormat, hash)
	}
	var compress bool
	switch compression {
	case CompressionZstd:
		compress = true
	case CompressionNone:
	default:
		return nil, fmt.Errorf("%w: compression %q (known: zstd, none)", ErrUnknownFormat, compression)
	}
	e := &encoded{Store: inner, hash: hash, compress: compress}
	if t, ok := inner.(Toucher); ok {
		// Touch and DeleteIfIdle work on IDs, not bytes: they pass
		// through, and the result still is a Toucher.
		return &encodedToucher{e, t}, nil
	}
	return e, nil
}

// encodedToucher is an encoded store over a Toucher.
type encodedToucher struct {
	*encoded
	t Toucher
}

func (e *encodedToucher) Touch(ctx context.Context, id ID) (bool, error) { return e.t.Touch(ctx, id) }

func (e *encodedToucher) DeleteIfIdle(ctx context.Context, id ID, since time.Time) (bool, error) {
	return e.t.DeleteIfIdle(ctx, id, since)
}

// Put frames and, if it makes the chunk smaller, compresses data.
func (e *encoded) Put(ctx context.Context, id ID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(data) > MaxChunkSize {
		return fmt.Errorf("put chunk %s: %d bytes is more than the %d-byte chunk limit",
			id.Str(), len(data), MaxChunkSize)
	}
	var enc *zstd.Encoder
	room := len(data)
	if e.compress && len(data) > 0 && compressible(data) {
		enc, _ = zstdCoders()
		room = max(room, enc.MaxEncodedSize(len(data)))
	}
	// One buffer with room for the raw and the worst compressed form, so
	// that when compression does not pay (random or already compressed
	// data) nothing is reallocated or copied twice. It is recycled: the
	// inner store does not retain it, and a fresh one per chunk cost as
	// much CPU zeroing memory and collecting garbage as a copy of the data.
	pb := getFrame(maxHeaderSize + room)
	defer putFrame(pb)
	buf := (*pb)[:maxHeaderSize]
	buf[0] = encodingV1
	n := 2 + binary.PutUvarint(buf[2:], uint64(len(data)))
	buf = buf[:n]
	if enc != nil {
		// EncodeAll appends after the header, leaving it in place.
		if out := enc.EncodeAll(data, buf); len(out)-n < len(data) {
			out[1] = codecZstd
			return e.Store.Put(ctx, id, out)
		}
	}
	buf[1] = codecRaw
	buf = append(buf, data...)
	return e.Store.Put(ctx, id, buf)
}

// frames recycles Put's buffers (*[]byte).
var frames sync.Pool

func getFrame(n int) *[]byte {
	if p, ok := frames.Get().(*[]byte); ok && cap(*p) >= n {
		return p
	}
	// Sized for the largest default chunk, so that one buffer serves
	// every chunk of a stream.
	b := make([]byte, 0, max(n, maxHeaderSize+DefaultFastCDCMax))
	return &b
}

func putFrame(p *[]byte) { frames.Put(p) }

// Get returns the plain chunk stored under id after checking its fingerprint.
func (e *encoded) Get(ctx context.Context, id ID) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := e.Store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	plain, reason := decode(b, func(n int) []byte { return make([]byte, n) })
	if reason == "" && e.hash.Sum(plain) != id {
		reason = fmt.Sprintf("content does not hash to its id under %s", e.hash)
	}
	if reason != "" {
		return nil, e.corrupt(id, reason)
	}
	return plain, nil
}

var _ BufferedGetter = (*encoded)(nil)

// GetBuffered is Get with the stored bytes read into memory from bufs (when
// the inner store can) and a compressed chunk decompressed into another such
// buffer. A size hint in bufs (WithSizeHint) is the chunk's plain size, and
// is passed on as the bound of its stored size. A raw chunk's plain bytes
// are its stored bytes after the header: they are returned in place, so
// reading one costs no copy in this layer.
func (e *encoded) GetBuffered(ctx context.Context, id ID, bufs Buffers) (data, buf []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	inner := bufs
	if h := SizeHint(bufs); h > 0 {
		// The hint is the plain size; Put stores at most the header
		// more (it compresses only when that makes the chunk smaller).
		inner = WithSizeHint(bufs, h+maxHeaderSize)
	}
	b, stored, err := GetBuffered(ctx, e.Store, id, inner)
	if err != nil {
		return nil, nil, err
	}
	var out []byte
	plain, reason := decode(b, func(n int) []byte { out = bufs.Get(n); return out })
	buf = stored
	if out != nil { // decompressed: the stored bytes are done with
		if stored != nil {
			bufs.Put(stored)
		}
		buf = out
	}
	if reason == "" && e.hash.Sum(plain) != id {
		reason = fmt.Sprintf("content does not hash to its id under %s", e.hash)
	}
	if reason != "" {
		if buf != nil {
			bufs.Put(buf)
		}
		return nil, nil, e.corrupt(id, reason)
	}
	return plain, buf, nil
}

// decode undoes Put's framing; a compressed chunk is decompressed into
// memory from alloc (asked for the plain length). On failure it returns a
// reason for a CorruptError.
func decode(b []byte, alloc func(n int) []byte) (plain []byte, reason string) {
	if len(b) < 2 {
		return nil, fmt.Sprintf("%d stored bytes, too short for a header", len(b))
	}
	if b[0] != encodingV1 {
		return nil, fmt.Sprintf("unknown frame version %d", b[0])
	}
	codec := b[1]
	size, n := binary.Uvarint(b[2:])
	if n <= 0 {
		return nil, "bad length in header"
	}
	if size > MaxChunkSize {
		return nil, fmt.Sprintf("header claims %d bytes, above the %d-byte chunk limit", size, MaxChunkSize)
	}
	payload := b[2+n:]
	switch codec {
	case codecRaw:
		if uint64(len(payload)) != size {
			return nil, fmt.Sprintf("raw chunk has %d bytes, header says %d", len(payload), size)
		}
		return payload, ""
	case codecZstd:
		_, dec := zstdCoders()
		// DecodeAll (WithDecodeAllCapLimit) writes no more than the
		// buffer holds, and the length is checked below: a pooled
		// buffer's slack past size only lets the decoder use its fast
		// loop to the end of the chunk.
		out, err := dec.DecodeAll(payload, alloc(int(size))[:0])
		if err != nil {
			return nil, fmt.Sprintf("zstd: %v", err)
		}
		if uint64(len(out)) != size {
			return nil, fmt.Sprintf("decompressed to %d bytes, header says %d", len(out), size)
		}
		return out, ""
	}
	return nil, fmt.Sprintf("unknown codec %d", codec)
}

// corrupt returns a *CorruptError for id, located at the inner store.
func (e *encoded) corrupt(id ID, reason string) error {
	return &CorruptError{ID: id, Where: e.Store.Properties().Name, Reason: reason}
}

// Properties are the inner store's, with the chunk limit this layer enforces.
func (e *encoded) Properties() Properties {
	p := e.Store.Properties()
	limit := int64(MaxChunkSize)
	if p.MaxChunkSize > 0 {
		limit = min(limit, p.MaxChunkSize-maxHeaderSize)
	}
	p.MaxChunkSize = limit
	return p
}

// sampleSize is how much of a large chunk compressible tries first: 16 KiB
// is well inside zstd's window, so text shows its redundancy in it as in a
// whole chunk, and at ~2.5% of a default chunk the guess costs little (at
// 64 KiB it was a ninth of the CPU of putting new random data).
const sampleSize = 16 << 10

// samples recycles compressible's output buffers (*[]byte).
var samples = sync.Pool{New: func() any {
	b := make([]byte, 0, sampleSize+sampleSize/8)
	return &b
}}

// compressible guesses whether compressing data is worth it by compressing
// a sample from its middle: random and already-compressed data (media,
// archives) is the common case where it is not, and zstd spends as long
// finding that out on a whole chunk as compressing text. Small chunks are
// always tried. The guess only costs space, never correctness.
func compressible(data []byte) bool {
	if len(data) <= 4*sampleSize {
		return true
	}
	enc, _ := zstdCoders()
	mid := len(data)/2 - sampleSize/2
	sample := data[mid : mid+sampleSize]
	pb := samples.Get().(*[]byte)
	defer samples.Put(pb)
	out := enc.EncodeAll(sample, (*pb)[:0])
	*pb = out[:0]
	return len(out) < sampleSize-sampleSize/32 // saves at least 3%
}
