package chunker

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/casfs/casfs/chunkstore"
)

// Small parameters, so that short streams have many chunks.
const (
	smallMin = 2 << 10
	smallAvg = 8 << 10
	smallMax = 32 << 10
)

// The golden "default" configuration is the one the boundaries below were
// pinned with (casfs's first default); store defaults may move on, these
// numbers may not.
const (
	goldenMin = 256 << 10
	goldenAvg = 1 << 20
	goldenMax = 4 << 20
)

func newDefaultFastCDC(r io.Reader) (Chunker, error) {
	return NewFastCDC(r, goldenMin, goldenAvg, goldenMax)
}

func newSmallFastCDC(r io.Reader) (Chunker, error) {
	return NewFastCDC(r, smallMin, smallAvg, smallMax)
}

// chunkAll runs a chunker made by newChunker over r to the end. It checks
// what holds for every chunker: offsets follow each other from 0 and the
// chunks put back together are the stream (want). It returns the chunks'
// lengths.
func chunkAll(t testing.TB, newChunker func(io.Reader) (Chunker, error), r io.Reader, want []byte) []int {
	t.Helper()
	c, err := newChunker(r)
	if err != nil {
		t.Fatal(err)
	}
	var lens []int
	var off int64
	for {
		ch, err := c.Next()
		if err == io.EOF {
			if len(ch.Data) != 0 {
				t.Fatalf("io.EOF came with %d bytes", len(ch.Data))
			}
			break
		}
		if err != nil {
			t.Fatalf("chunk %d: %v", len(lens), err)
		}
		if len(ch.Data) == 0 {
			t.Fatalf("chunk %d is empty", len(lens))
		}
		if ch.Offset != off {
			t.Fatalf("chunk %d at offset %d, want %d", len(lens), ch.Offset, off)
		}
		if end := off + int64(len(ch.Data)); end > int64(len(want)) || !bytes.Equal(ch.Data, want[off:end]) {
			t.Fatalf("chunk %d (offset %d, %d bytes) does not match the stream", len(lens), off, len(ch.Data))
		}
		off += int64(len(ch.Data))
		lens = append(lens, len(ch.Data))
	}
	if off != int64(len(want)) {
		t.Fatalf("chunks cover %d bytes of %d", off, len(want))
	}
	// Once at the end, the chunker stays there.
	if _, err := c.Next(); err != io.EOF {
		t.Fatalf("Next after io.EOF: %v, want io.EOF", err)
	}
	return lens
}

// checkSizes checks that every chunk but the last is within [min, max] and
// the last is within [1, max].
func checkSizes(t *testing.T, lens []int, min, max int) {
	t.Helper()
	for i, n := range lens {
		if n > max || (n < min && i != len(lens)-1) {
			t.Fatalf("chunk %d of %d is %d bytes, outside [%d, %d]", i, len(lens), n, min, max)
		}
	}
}

// sliceReader returns the stream in pseudo-random slices of 0 to max bytes
// (a few reads return nothing, which readers may do) and returns the last
// bytes together with io.EOF.
type sliceReader struct {
	data []byte
	s    uint64 // xorshift state
	max  int
}

func newSliceReader(data []byte, seed uint64, max int) *sliceReader {
	return &sliceReader{data: data, s: seed*0x9e3779b97f4a7c15 | 1, max: max}
}

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.s ^= r.s << 13
	r.s ^= r.s >> 7
	r.s ^= r.s << 17
	n := int(r.s % uint64(r.max+1))
	n = min(n, len(p))
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	if len(r.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// lengthsDigest is the SHA-256 of the chunk lengths as little-endian uint64s,
// a short way to pin a list of boundaries.
func lengthsDigest(lens []int) string {
	h := sha256.New()
	var b [8]byte
	for _, n := range lens {
		binary.LittleEndian.PutUint64(b[:], uint64(n))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestGearTable pins the gear table and the masks, which are on-disk format.
func TestGearTable(t *testing.T) {
	h := sha256.New()
	var b [8]byte
	for _, g := range gear {
		binary.LittleEndian.PutUint64(b[:], g)
		h.Write(b[:])
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), "18bcc7b385454b4aba36c42735bad239a8ba8d101532dcd48b790576b2861e0e"; got != want {
		t.Errorf("gear table digest %s, want %s: the gear table is on-disk format and must not change", got, want)
	}
	if got, want := gear[0], uint64(0x0f25da0538d97262); got != want {
		t.Errorf("gear[0] = %#x, want %#x", got, want)
	}
	for _, tc := range []struct {
		avg        int
		hard, easy uint64
	}{
		{64, 0xff00000000000000, 0xf000000000000000},
		{8 << 10, 0xfffe000000000000, 0xffe0000000000000},
		{12 << 10, 0xfffe000000000000, 0xffe0000000000000}, // rounded down to 8 KiB
		{1 << 20, 0xfffffc0000000000, 0xffffc00000000000},
	} {
		hard, easy := fastcdcMasks(tc.avg)
		if hard != tc.hard || easy != tc.easy {
			t.Errorf("masks for avg %d: %#x, %#x; want %#x, %#x", tc.avg, hard, easy, tc.hard, tc.easy)
		}
	}
}

// fastcdcGolden pins FastCDC's boundaries. They are on-disk format: a store
// finds the chunks it already has only if the same bytes are cut in the same
// places by every casfs that ever writes to it. If a golden test fails, the
// change broke deduplication against every existing store; revert it.
var fastcdcGolden = []struct {
	name          string
	min, avg, max int
	size          int // bytes of testData(size, seed)
	seed          uint64
	count         int
	first         []int // lengths of the first chunks
	digest        string
}{
	{"default", goldenMin, goldenAvg, goldenMax,
		16 << 20, 1, 16, []int{1059564, 1060904, 1134879, 1397395},
		"85742f3e0ea1280f93d9c78876169d8c887fda446a8e4e4b894050f169c94f0d"},
	// The store default since 2e323a2 (chunkstore.DefaultConfig); avg is
	// not a power of two, so its masks are those of 512 KiB.
	{"store default", 160 << 10, 640 << 10, 2560 << 10,
		16 << 20, 3, 22, []int{668656, 661896, 716619, 676185},
		"c4265c693a15bf767c05e63005e547df141fa6b1d486f3a755b3333d0c2de39a"},
	{"small", smallMin, smallAvg, smallMax,
		1 << 20, 2, 111, []int{22480, 9085, 7513, 9171},
		"52f52fbe0250f5f7224a91871a9541a5cff8659bfca34e4ff86a26ff9d158912"},
}

func TestFastCDCGolden(t *testing.T) {
	for _, g := range fastcdcGolden {
		t.Run(g.name, func(t *testing.T) {
			data := testData(g.size, g.seed)
			newChunker := func(r io.Reader) (Chunker, error) { return NewFastCDC(r, g.min, g.avg, g.max) }
			lens := chunkAll(t, newChunker, bytes.NewReader(data), data)
			checkSizes(t, lens, g.min, g.max)
			t.Logf("%d chunks, mean %d bytes, first %v, digest %s", len(lens), g.size/len(lens), lens[:min(4, len(lens))], lengthsDigest(lens))
			if len(lens) != g.count {
				t.Errorf("%d chunks, want %d", len(lens), g.count)
			}
			if !equalPrefix(lens, g.first) {
				t.Errorf("first chunks %v, want %v", lens[:min(len(g.first), len(lens))], g.first)
			}
			if d := lengthsDigest(lens); d != g.digest {
				t.Errorf("boundaries digest %s, want %s", d, g.digest)
			}
			// Split, as a put of a file cuts, in blocks of four chunks.
			c, _ := newFastCDCCut(g.min, g.avg, g.max)
			ends := splitCuts(t, c, data, 2, 4*g.max)
			var slens []int
			for i, e := range ends {
				slens = append(slens, int(e)-int(ends[max(i-1, 0)]))
			}
			slens[0] = int(ends[0])
			if d := lengthsDigest(slens); d != g.digest {
				t.Errorf("Split: boundaries digest %s, want %s", d, g.digest)
			}
		})
	}
}

func equalPrefix(lens, first []int) bool {
	if len(lens) < len(first) {
		return false
	}
	for i := range first {
		if lens[i] != first[i] {
			return false
		}
	}
	return true
}

// TestFixedGolden pins the fixed chunker: every chunk is size bytes but the
// last.
func TestFixedGolden(t *testing.T) {
	for _, tc := range []struct{ size, n int }{
		{chunkstore.DefaultFixedSize, 16<<20 + 12345},
		{chunkstore.DefaultFixedSize, 8 << 20},
		{4096, 100000},
		{64, 64},
		{64, 65},
	} {
		data := testData(tc.n, 3)
		newChunker := func(r io.Reader) (Chunker, error) { return NewFixed(r, tc.size) }
		var want []int
		for n := tc.n; n > 0; n -= tc.size {
			want = append(want, min(n, tc.size))
		}
		for _, rd := range readers(data, tc.n <= 1<<20) {
			got := chunkAll(t, newChunker, rd.r, data)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("size %d, %d bytes, %s: chunks %v, want %v", tc.size, tc.n, rd.name, got, want)
			}
		}
	}
}

type namedReader struct {
	name string
	r    io.Reader
}

// readers returns data whole, in random slices of up to 100 KiB and of up
// to 100 bytes, and with byteByByte, one byte per Read.
func readers(data []byte, byteByByte bool) []namedReader {
	rs := []namedReader{
		{"whole", bytes.NewReader(data)},
		{"slices", newSliceReader(data, 1, 100<<10)},
		{"small slices", newSliceReader(data, 2, 100)},
		{"half", iotest.HalfReader(bytes.NewReader(data))},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(data))},
	}
	if byteByByte {
		rs = append(rs, namedReader{"one byte", iotest.OneByteReader(bytes.NewReader(data))})
	}
	return rs
}

// TestFastCDCReaders checks that the boundaries do not depend on how the
// reader slices the stream.
func TestFastCDCReaders(t *testing.T) {
	for _, g := range fastcdcGolden {
		t.Run(g.name, func(t *testing.T) {
			data := testData(g.size, g.seed)
			newChunker := func(r io.Reader) (Chunker, error) { return NewFastCDC(r, g.min, g.avg, g.max) }
			want := chunkAll(t, newChunker, bytes.NewReader(data), data)
			for _, rd := range readers(data, g.size <= 1<<20) {
				got := chunkAll(t, newChunker, rd.r, data)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s reader: chunks %v, want %v", rd.name, got, want)
				}
			}
		})
	}
}

// TestFastCDCSizes checks sizes and reassembly around the edges: streams
// shorter than min, exactly min, max, and a little over.
func TestFastCDCSizes(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, smallMin - 1, smallMin, smallMin + 1, smallAvg, smallMax - 1, smallMax,
		smallMax + 1, 2 * smallMax, 2*smallMax + 1, 3*smallMax + 17, 1 << 20} {
		data := testData(n, uint64(n))
		for _, rd := range readers(data, true) {
			lens := chunkAll(t, newSmallFastCDC, rd.r, data)
			checkSizes(t, lens, smallMin, smallMax)
			if n > 0 && n <= smallMin && len(lens) != 1 {
				t.Errorf("%d bytes made %d chunks, want 1", n, len(lens))
			}
		}
	}
	// min == avg == max is a fixed chunker.
	data := testData(10000, 4)
	lens := chunkAll(t, func(r io.Reader) (Chunker, error) { return NewFastCDC(r, 1000, 1000, 1000) }, bytes.NewReader(data), data)
	if fmt.Sprint(lens) != fmt.Sprint([]int{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}) {
		t.Errorf("min = avg = max = 1000: chunks %v", lens)
	}
}

// TestFastCDCDistribution checks that normalized chunking keeps chunks near
// avg, on enough chunks for the mean to mean something.
func TestFastCDCDistribution(t *testing.T) {
	data := testData(16<<20, 5)
	lens := chunkAll(t, newSmallFastCDC, bytes.NewReader(data), data)
	mean := len(data) / len(lens)
	var atMax int
	for _, n := range lens {
		if n == smallMax {
			atMax++
		}
	}
	t.Logf("%d chunks, mean %d, %d at max", len(lens), mean, atMax)
	if mean < smallAvg*3/4 || mean > smallAvg*3/2 {
		t.Errorf("mean chunk %d bytes, want about %d", mean, smallAvg)
	}
	if atMax > len(lens)/100 {
		t.Errorf("%d of %d chunks cut at max", atMax, len(lens))
	}
}

// chunkIDs returns the IDs of the chunks of data.
func chunkIDs(t *testing.T, newChunker func(io.Reader) (Chunker, error), data []byte) []chunkstore.ID {
	t.Helper()
	c, err := newChunker(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var ids []chunkstore.ID
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, chunkstore.HashBLAKE3.Sum(ch.Data))
	}
}

// TestFastCDCResync is why casfs uses a content-defined chunker: after a few
// bytes are inserted or deleted, the boundaries fall back in step with the
// old ones, so all chunks but the one or two around the edit are ones the
// store already has. (With the fixed chunker every later chunk would change.)
func TestFastCDCResync(t *testing.T) {
	data := testData(16<<20, 6)
	edits := []struct {
		name string
		edit func([]byte) []byte
		new  int // bytes of new content, which needs new chunks of its own
	}{
		{"insert 5 bytes at 1000", func(d []byte) []byte { return splice(d, 1000, 0, []byte("hello")) }, 5},
		{"insert 1 byte at 0", func(d []byte) []byte { return splice(d, 0, 0, []byte{0}) }, 1},
		{"insert 300 KiB at 100 KiB", func(d []byte) []byte { return splice(d, 100<<10, 0, testData(300<<10, 7)) }, 300 << 10},
		{"delete 17 bytes at 70000", func(d []byte) []byte { return splice(d, 70000, 17, nil) }, 0},
		{"overwrite 8 bytes at 5 MiB", func(d []byte) []byte { return splice(d, 5<<20, 8, []byte("casfs!!!")) }, 8},
	}
	for _, cfg := range []struct {
		name       string
		newChunker func(io.Reader) (Chunker, error)
		min        int
	}{{"default", newDefaultFastCDC, goldenMin}, {"small", newSmallFastCDC, smallMin}} {
		old := chunkIDs(t, cfg.newChunker, data)
		for _, e := range edits {
			ids := chunkIDs(t, cfg.newChunker, e.edit(data))
			// The chunks before the edit are the old ones, and so, once
			// the boundaries are back in step, are all those after it.
			n := min(len(ids), len(old))
			prefix := 0
			for prefix < n && ids[prefix] == old[prefix] {
				prefix++
			}
			suffix := 0
			for prefix+suffix < n && ids[len(ids)-1-suffix] == old[len(old)-1-suffix] {
				suffix++
			}
			changed := len(ids) - prefix - suffix
			t.Logf("%s, %s: %d of %d chunks changed", cfg.name, e.name, changed, len(ids))
			// One or two chunks around the edit, plus those that hold only
			// new content.
			if limit := 2 + e.new/cfg.min; changed > limit {
				t.Errorf("%s, %s: %d of %d chunks changed, want at most %d", cfg.name, e.name, changed, len(ids), limit)
			}
		}
	}
}

// splice returns a copy of d with n bytes at off replaced by ins.
func splice(d []byte, off, n int, ins []byte) []byte {
	out := make([]byte, 0, len(d)-n+len(ins))
	out = append(out, d[:off]...)
	out = append(out, ins...)
	return append(out, d[off+n:]...)
}

// TestZeros: runs of zeros (sparse files, zeroed disk images) come out as
// all-zero chunks, which the caller stores as holes. The gear hash of a long
// zero run is a constant that matches neither mask, so FastCDC cuts them at
// max.
func TestZeros(t *testing.T) {
	data := make([]byte, 16<<20+1000)
	for _, cfg := range []struct {
		name       string
		newChunker func(io.Reader) (Chunker, error)
		max        int
	}{
		{"fastcdc", newDefaultFastCDC, goldenMax},
		{"small fastcdc", newSmallFastCDC, smallMax},
		{"fixed", func(r io.Reader) (Chunker, error) { return NewFixed(r, chunkstore.DefaultFixedSize) }, chunkstore.DefaultFixedSize},
	} {
		// chunkAll checks that each chunk equals the input there: all zero.
		lens := chunkAll(t, cfg.newChunker, bytes.NewReader(data), data)
		for i, n := range lens[:len(lens)-1] {
			if n != cfg.max {
				t.Errorf("%s: zero chunk %d is %d bytes, want max %d", cfg.name, i, n, cfg.max)
			}
		}
	}
}

var errBoom = errors.New("boom")

// errAfterReader returns the first n bytes of data, then err.
type errAfterReader struct {
	data []byte
	n    int
	err  error
}

func (r *errAfterReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	m := copy(p, r.data[:min(r.n, len(r.data))])
	r.data, r.n = r.data[m:], r.n-m
	return m, nil
}

// TestReadError checks that a failing reader's error comes out of Next, stays
// there, and that the chunks before it are right.
func TestReadError(t *testing.T) {
	data := testData(1<<20, 8)
	for _, cfg := range []struct {
		name       string
		newChunker func(io.Reader) (Chunker, error)
	}{
		{"fastcdc", newSmallFastCDC},
		{"fixed", func(r io.Reader) (Chunker, error) { return NewFixed(r, 4096) }},
	} {
		for _, at := range []int{0, 1, 100000, len(data) - 1} {
			c, err := cfg.newChunker(&errAfterReader{data: data, n: at, err: errBoom})
			if err != nil {
				t.Fatal(err)
			}
			var off int
			for {
				ch, err := c.Next()
				if err != nil {
					if !errors.Is(err, errBoom) {
						t.Errorf("%s, error after %d bytes: Next: %v, want %v", cfg.name, at, err, errBoom)
					}
					break
				}
				if ch.Offset != int64(off) || off+len(ch.Data) > at || !bytes.Equal(ch.Data, data[off:off+len(ch.Data)]) {
					t.Fatalf("%s, error after %d bytes: bad chunk at %d (%d bytes)", cfg.name, at, ch.Offset, len(ch.Data))
				}
				off += len(ch.Data)
			}
			if _, err := c.Next(); !errors.Is(err, errBoom) {
				t.Errorf("%s: Next after the error: %v, want %v", cfg.name, err, errBoom)
			}
		}
		// A reader that returns nothing, forever, is an error, not a hang.
		c, err := cfg.newChunker(emptyReader{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next(); !errors.Is(err, io.ErrNoProgress) {
			t.Errorf("%s: Next on a reader that never returns data: %v, want io.ErrNoProgress", cfg.name, err)
		}
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

// TestEmpty: an empty stream has no chunks.
func TestEmpty(t *testing.T) {
	for _, newChunker := range []func(io.Reader) (Chunker, error){
		newDefaultFastCDC,
		func(r io.Reader) (Chunker, error) { return NewFixed(r, 64) },
	} {
		c, err := newChunker(strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if ch, err := c.Next(); err != io.EOF || len(ch.Data) != 0 {
				t.Errorf("Next on an empty stream: %d bytes, %v; want io.EOF", len(ch.Data), err)
			}
		}
	}
}

// TestChunkCapacity: appending to a chunk must not write over the next one,
// which shares its buffer.
func TestChunkCapacity(t *testing.T) {
	data := testData(200<<10, 9)
	for _, newChunker := range []func(io.Reader) (Chunker, error){
		newSmallFastCDC,
		func(r io.Reader) (Chunker, error) { return NewFixed(r, 4096) },
	} {
		c, err := newChunker(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for {
			ch, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if cap(ch.Data) != len(ch.Data) {
				t.Fatalf("chunk at %d: cap %d, len %d", ch.Offset, cap(ch.Data), len(ch.Data))
			}
		}
	}
}

func TestParameters(t *testing.T) {
	r := strings.NewReader("")
	for _, tc := range []struct {
		min, avg, max int
		wantErr       string // "" for valid
	}{
		{64, 64, 64, ""},
		{256 << 10, 1 << 20, 4 << 20, ""},
		{1 << 20, 4 << 20, chunkstore.MaxChunkSize, ""},
		{63, 1024, 4096, "min is below 64"},
		{0, 0, 0, "min is below 64"},
		{-1, 1024, 4096, "min is below 64"},
		{2048, 1024, 4096, "min is above avg"},
		{1024, 8192, 4096, "avg is above max"},
		{1024, 8192, chunkstore.MaxChunkSize + 1, "max is above the limit"},
	} {
		_, err := NewFastCDC(r, tc.min, tc.avg, tc.max)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("NewFastCDC(%d, %d, %d): %v", tc.min, tc.avg, tc.max, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("NewFastCDC(%d, %d, %d): error %v, want one saying %q", tc.min, tc.avg, tc.max, err, tc.wantErr)
		}
	}
	for _, tc := range []struct {
		size int
		ok   bool
	}{{64, true}, {4 << 20, true}, {chunkstore.MaxChunkSize, true}, {63, false}, {0, false}, {-5, false}, {chunkstore.MaxChunkSize + 1, false}} {
		_, err := NewFixed(r, tc.size)
		if (err == nil) != tc.ok {
			t.Errorf("NewFixed(%d): %v", tc.size, err)
		}
		if err != nil && !strings.Contains(err.Error(), "need 64 <= size <=") {
			t.Errorf("NewFixed(%d): unclear error %q", tc.size, err)
		}
	}
	if _, err := NewFastCDC(nil, 64, 64, 64); err == nil {
		t.Error("NewFastCDC with a nil reader: no error")
	}
	if _, err := NewFixed(nil, 64); err == nil {
		t.Error("NewFixed with a nil reader: no error")
	}
}

// TestNew checks that the store config's names reach the right chunker, and
// that the default config is accepted.
func TestNew(t *testing.T) {
	data := testData(1<<20, 10)
	for _, tc := range []struct {
		cfg  chunkstore.ChunkerConfig
		want func(io.Reader) (Chunker, error)
	}{
		{chunkstore.DefaultConfig().Chunker, func(r io.Reader) (Chunker, error) {
			d := chunkstore.DefaultConfig().Chunker
			return NewFastCDC(r, d.Min, d.Avg, d.Max)
		}},
		{chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: goldenMin, Avg: goldenAvg, Max: goldenMax}, newDefaultFastCDC},
		{chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: smallMin, Avg: smallAvg, Max: smallMax}, newSmallFastCDC},
		{chunkstore.ChunkerConfig{Algorithm: "fixed", Size: 4096}, func(r io.Reader) (Chunker, error) { return NewFixed(r, 4096) }},
	} {
		got := chunkAll(t, func(r io.Reader) (Chunker, error) { return New(tc.cfg, r) }, bytes.NewReader(data), data)
		want := chunkAll(t, tc.want, bytes.NewReader(data), data)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("New(%+v): chunks %v, want %v", tc.cfg, got, want)
		}
	}
	if _, err := New(chunkstore.ChunkerConfig{Algorithm: "rabin"}, strings.NewReader("")); err == nil {
		t.Error("New with an unknown algorithm: no error")
	}
}
