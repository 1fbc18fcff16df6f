package chunkstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
	"github.com/casfs/casfs/chunkstore/mem"
)

func newEncoded(t *testing.T, compression string) (chunkstore.Store, *mem.Store) {
	t.Helper()
	inner := mem.New()
	s, err := chunkstore.NewEncoded(inner, chunkstore.HashBLAKE3, compression)
	if err != nil {
		t.Fatal(err)
	}
	return s, inner
}

func TestEncodedConformance(t *testing.T) {
	for _, comp := range []string{chunkstore.CompressionZstd, chunkstore.CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			chunkstoretest.Run(t, func(t *testing.T) chunkstore.Store {
				s, _ := newEncoded(t, comp)
				return s
			})
		})
	}
}

func TestNewEncodedRefuses(t *testing.T) {
	if _, err := chunkstore.NewEncoded(mem.New(), "md5", chunkstore.CompressionZstd); !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Errorf("NewEncoded with hash md5: %v", err)
	}
	if _, err := chunkstore.NewEncoded(mem.New(), chunkstore.HashBLAKE3, "lz4"); !errors.Is(err, chunkstore.ErrUnknownFormat) {
		t.Errorf("NewEncoded with compression lz4: %v", err)
	}
}

// stored returns the bytes the encoded layer handed to the inner store.
func stored(t *testing.T, inner *mem.Store, id chunkstore.ID) []byte {
	t.Helper()
	b, err := inner.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// header parses a stored chunk's header: codec and header length.
func header(t *testing.T, b []byte) (codec byte, plainLen uint64, n int) {
	t.Helper()
	if len(b) < 3 || b[0] != 1 {
		t.Fatalf("stored chunk starts % x; want frame version 1", b[:min(len(b), 3)])
	}
	plainLen, n = binary.Uvarint(b[2:])
	return b[1], plainLen, 2 + n
}

func put(t *testing.T, s chunkstore.Store, data []byte) chunkstore.ID {
	t.Helper()
	id := chunkstore.HashBLAKE3.Sum(data)
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEncodedStoresRawWhenCompressionDoesNotPay(t *testing.T) {
	s, inner := newEncoded(t, chunkstore.CompressionZstd)
	for _, data := range [][]byte{
		chunkstoretest.RandomBytes(1, 1<<20),
		chunkstoretest.RandomBytes(2, 100),
		{},
	} {
		b := stored(t, inner, put(t, s, data))
		codec, plainLen, n := header(t, b)
		if codec != 0 || plainLen != uint64(len(data)) || len(b) != n+len(data) || n > 2+3 {
			t.Errorf("%d random bytes stored as codec %d, length %d, %d bytes with a %d-byte header; want raw, plain size + header",
				len(data), codec, plainLen, len(b), n)
		}
	}
}

func TestEncodedCompresses(t *testing.T) {
	data := chunkstoretest.TextBytes(1, 1<<20)
	s, inner := newEncoded(t, chunkstore.CompressionZstd)
	b := stored(t, inner, put(t, s, data))
	if codec, plainLen, _ := header(t, b); codec != 1 || plainLen != uint64(len(data)) {
		t.Errorf("text stored with codec %d and length %d; want zstd (1), %d", codec, plainLen, len(data))
	}
	if len(b) > len(data)/2 {
		t.Errorf("1 MiB of text stored in %d bytes; want less than half", len(b))
	}
	t.Logf("1 MiB of text stored in %d bytes (%.1f%%)", len(b), 100*float64(len(b))/float64(len(data)))

	s, inner = newEncoded(t, chunkstore.CompressionNone)
	b = stored(t, inner, put(t, s, data))
	if codec, _, n := header(t, b); codec != 0 || len(b) != n+len(data) {
		t.Errorf("with compression none, text stored with codec %d in %d bytes", codec, len(b))
	}
}

// TestEncodedGolden decodes chunks as this format stores them. Every codec
// ever written must stay readable: add a case for each new one and never
// change or drop one.
func TestEncodedGolden(t *testing.T) {
	plain := []byte("casfs golden chunk: casfs golden chunk: casfs golden chunk: casfs golden chunk!\n")
	id := chunkstore.HashBLAKE3.Sum(plain)
	for name, enc := range map[string]string{
		"v1 raw": "0100" + "50" + hex.EncodeToString(plain),
		"v1 zstd": "0101" + "50" + "28b52ffd0000fd00006401636173667320676f6c64656e206368756e6b3a20" +
			"210a01541204267e01",
	} {
		t.Run(name, func(t *testing.T) {
			b, err := hex.DecodeString(enc)
			if err != nil {
				t.Fatal(err)
			}
			s, inner := newEncoded(t, chunkstore.CompressionZstd)
			if err := inner.Put(context.Background(), id, b); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(context.Background(), id)
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("Get = %q, %v; want %q", got, err, plain)
			}
		})
	}
}

func TestEncodedCorrupt(t *testing.T) {
	text := chunkstoretest.TextBytes(2, 64<<10)
	random := chunkstoretest.RandomBytes(3, 64<<10)
	for _, tc := range []struct {
		name   string
		data   []byte
		comp   string
		damage func(b []byte) []byte
		reason string
	}{
		{"flipped zstd byte", text, "zstd", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }, ""},
		{"flipped raw byte", random, "zstd", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }, "does not hash"},
		{"truncated zstd", text, "zstd", func(b []byte) []byte { return b[:len(b)-10] }, ""},
		{"truncated raw", random, "none", func(b []byte) []byte { return b[:len(b)-1] }, "header says"},
		{"empty", text, "zstd", func(b []byte) []byte { return nil }, "too short"},
		{"unknown version", text, "zstd", func(b []byte) []byte { b[0] = 9; return b }, "frame version 9"},
		{"unknown codec", text, "zstd", func(b []byte) []byte { b[1] = 200; return b }, "unknown codec 200"},
		{"bad length", text, "zstd", func(b []byte) []byte { return append(b[:2], 0xff, 0xff) }, "bad length"},
		{"huge length", text, "zstd", func(b []byte) []byte {
			return append(binary.AppendUvarint(b[:2], 1<<40), b[5:]...)
		}, "chunk limit"},
		{"zstd longer than header", text, "zstd", func(b []byte) []byte { return setLen(b, 1000) }, "zstd"},
		{"zstd shorter than header", text, "zstd", func(b []byte) []byte { return setLen(b, 65537) }, "decompressed to 65536 bytes, header says 65537"},
		{"raw claimed as zstd", random, "none", func(b []byte) []byte { b[1] = 1; return b }, "zstd"},
		{"zstd claimed as raw", text, "zstd", func(b []byte) []byte { b[1] = 0; return b }, "raw chunk has"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, inner := newEncoded(t, tc.comp)
			id := put(t, s, tc.data)
			b := tc.damage(stored(t, inner, id))
			if err := inner.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := inner.Put(ctx, id, b); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, id)
			checkCorrupt(t, err, id, tc.reason)
			if got != nil {
				t.Errorf("Get of a corrupt chunk returned %d bytes", len(got))
			}
			// Reading into lent memory: the same error, nothing kept.
			l := chunkstoretest.NewLender(t)
			got, buf, err := chunkstore.GetBuffered(ctx, s, id, l)
			checkCorrupt(t, err, id, tc.reason)
			if got != nil || buf != nil {
				t.Errorf("GetBuffered of a corrupt chunk returned %d bytes", len(got))
			}
			l.Check()
		})
	}
}

// setLen rewrites the plain length in a stored chunk's header.
func setLen(b []byte, n uint64) []byte {
	_, k := binary.Uvarint(b[2:])
	return append(binary.AppendUvarint(b[:2:2], n), b[2+k:]...)
}

func checkCorrupt(t *testing.T, err error, id chunkstore.ID, reason string) {
	t.Helper()
	t.Log(err)
	var ce *chunkstore.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("Get: %v; want a *CorruptError", err)
	}
	if ce.ID != id || ce.Where != "mem" || !strings.Contains(ce.Reason, reason) {
		t.Errorf("CorruptError{%s, %q, %q}; want id %s, where mem, reason containing %q", ce.ID.Str(), ce.Where, ce.Reason, id.Str(), reason)
	}
	if !strings.Contains(err.Error(), id.String()) {
		t.Errorf("error %q does not name the chunk", err)
	}
}

// TestEncodedWrongID puts data under an ID that is not its fingerprint, as a
// buggy caller would: Put does not check, Get must not return the data.
func TestEncodedWrongID(t *testing.T) {
	for _, comp := range []string{chunkstore.CompressionZstd, chunkstore.CompressionNone} {
		s, _ := newEncoded(t, comp)
		id := chunkstore.HashBLAKE3.Sum([]byte("one thing"))
		if err := s.Put(context.Background(), id, []byte("another")); err != nil {
			t.Fatal(err)
		}
		_, err := s.Get(context.Background(), id)
		checkCorrupt(t, err, id, "does not hash to its id under blake3-256")
	}
}

func TestEncodedSHA256(t *testing.T) {
	inner := mem.New()
	s, err := chunkstore.NewEncoded(inner, chunkstore.HashSHA256, chunkstore.CompressionZstd)
	if err != nil {
		t.Fatal(err)
	}
	data := chunkstoretest.TextBytes(4, 10000)
	ctx := context.Background()
	id := chunkstore.HashSHA256.Sum(data)
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get under SHA-256: %v", err)
	}
	// The same bytes under their BLAKE3 ID do not verify under SHA-256.
	b3 := chunkstore.HashBLAKE3.Sum(data)
	if err := s.Put(ctx, b3, data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, b3); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Errorf("Get of a BLAKE3 id from a SHA-256 store: %v", err)
	}
}

func TestEncodedLimits(t *testing.T) {
	s, inner := newEncoded(t, chunkstore.CompressionZstd)
	if got := s.Properties().MaxChunkSize; got != chunkstore.MaxChunkSize {
		t.Errorf("MaxChunkSize = %d, want %d", got, chunkstore.MaxChunkSize)
	}
	big := make([]byte, chunkstore.MaxChunkSize+1)
	if err := s.Put(context.Background(), chunkstore.HashBLAKE3.Sum(big), big); err == nil {
		t.Error("Put of a chunk above MaxChunkSize succeeded")
	}
	if inner.Len() != 0 {
		t.Error("refused Put stored something")
	}
	// The largest allowed chunk, all zeros: compresses to almost nothing,
	// and must decompress within the decoder's memory bound.
	id := put(t, s, big[:chunkstore.MaxChunkSize])
	got, err := s.Get(context.Background(), id)
	if err != nil || len(got) != chunkstore.MaxChunkSize {
		t.Errorf("Get of a MaxChunkSize chunk: %d bytes, %v", len(got), err)
	}
}

func TestEncodedNotFoundPassesThrough(t *testing.T) {
	s, _ := newEncoded(t, chunkstore.CompressionZstd)
	id := chunkstore.HashBLAKE3.Sum([]byte("missing"))
	if _, err := s.Get(context.Background(), id); !errors.Is(err, chunkstore.ErrNotFound) || errors.Is(err, chunkstore.ErrCorrupt) {
		t.Errorf("Get of a missing chunk: %v; want ErrNotFound and not ErrCorrupt", err)
	}
}

// slackBufs lends buffers with room to spare, as the cache's size classes do.
type slackBufs struct{}

func (slackBufs) Get(n int) []byte { return make([]byte, n, n+8<<10) }
func (slackBufs) Put([]byte)       {}

// A zstd chunk that decodes to a little more than its header says is
// corrupt even when the buffer it decodes into has room for the excess.
func TestEncodedZstdLongerThanHeaderIntoSlack(t *testing.T) {
	ctx := context.Background()
	s, inner := newEncoded(t, chunkstore.CompressionZstd)
	data := chunkstoretest.TextBytes(4, 64<<10)
	id := put(t, s, data)
	b := setLen(stored(t, inner, id), uint64(len(data)-100))
	if err := inner.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := inner.Put(ctx, id, b); err != nil {
		t.Fatal(err)
	}
	got, buf, err := chunkstore.GetBuffered(ctx, s, id, slackBufs{})
	checkCorrupt(t, err, id, "header says")
	if got != nil || buf != nil {
		t.Errorf("GetBuffered of a corrupt chunk returned %d bytes", len(got))
	}
}

// hintRecorder is a store that records the size hint its GetBuffered gets.
type hintRecorder struct {
	chunkstore.Store
	hint int
}

func (h *hintRecorder) GetBuffered(ctx context.Context, id chunkstore.ID, bufs chunkstore.Buffers) ([]byte, []byte, error) {
	h.hint = chunkstore.SizeHint(bufs)
	b, err := h.Store.Get(ctx, id)
	return b, nil, err
}

// Encoded passes a plain-size hint on as the bound of the stored size:
// the plain size plus the largest header, which raw (incompressible) chunks
// reach and compressed ones stay under.
func TestEncodedPassesSizeHint(t *testing.T) {
	ctx := context.Background()
	rec := &hintRecorder{Store: mem.New()}
	s, err := chunkstore.NewEncoded(rec, chunkstore.HashBLAKE3, "zstd")
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 100<<10)
	rand.Read(random)
	id := chunkstore.HashBLAKE3.Sum(random)
	if err := s.Put(ctx, id, random); err != nil {
		t.Fatal(err)
	}
	st, err := rec.Store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	l := chunkstoretest.NewLender(t)
	data, buf, err := chunkstore.GetBuffered(ctx, s, id, chunkstore.WithSizeHint(l, len(random)))
	if err != nil || !bytes.Equal(data, random) {
		t.Fatalf("GetBuffered: %d bytes, %v", len(data), err)
	}
	if buf != nil {
		l.Put(buf)
	}
	l.Check()
	if rec.hint < len(st) || rec.hint > len(random)+2+binary.MaxVarintLen64 {
		t.Errorf("inner store got size hint %d for a %d-byte chunk stored in %d bytes", rec.hint, len(random), len(st))
	}
	_, buf, err = chunkstore.GetBuffered(ctx, s, id, l)
	if err != nil || rec.hint != 0 {
		t.Errorf("without a hint the inner store got hint %d (%v)", rec.hint, err)
	}
	if buf != nil {
		l.Put(buf)
	}
	l.Check()
}
