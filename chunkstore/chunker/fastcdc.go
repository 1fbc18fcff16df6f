package chunker

import (
	"fmt"
	"io"
	"math/bits"

	"github.com/casfs/casfs/chunkstore"
)

// gearSeed seeds the generator of the gear table.
//
// ON-DISK FORMAT: the gear table, the way masks are derived from avg
// (fastcdcMasks), the normalization level and the cut rule in cut decide
// every chunk boundary, and so which chunks a store already holds. Once
// released they never change; a different chunker is a new algorithm name in
// chunkstore.ChunkerConfig, never an edit here. TestGearTable and the golden
// tests in fastcdc_test.go fail if any of them moves.
const gearSeed = 0x6361736673676561 // "casfsgea"

// gear maps each byte value to a random 64-bit word. It is generated rather
// than written out so that it is short to read, and with splitmix64 written
// here rather than math/rand, whose streams are not promised to stay the
// same across Go releases.
var gear = makeGear(gearSeed)

func makeGear(seed uint64) (t [256]uint64) {
	s := seed
	for i := range t {
		t[i] = splitmix64(&s)
	}
	return t
}

// splitmix64 is Steele, Lea and Flood's generator (the seeding generator of
// xoroshiro); it advances *s and returns the next value.
func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// normalization is FastCDC's normalization level: the mask used before the
// average size has this many more bits than log2(avg), the one used after it
// this many fewer. Level 2 is what the paper recommends. Part of the format.
const normalization = 2

// fastcdcMasks returns the hard (before avg) and easy (after avg) masks for
// an average chunk size avg, which is rounded down to a power of two, 2^b.
// The masks take the top bits of the gear hash: after fp = fp<<1 + gear[x],
// bit k of fp depends only on the last k+1 bytes, so the top bits are the
// ones that see a full 64-byte window. Part of the format.
func fastcdcMasks(avg int) (hard, easy uint64) {
	b := bits.Len(uint(avg)) - 1 // avg >= 64, so b >= 6 and b-normalization >= 4
	top := func(n int) uint64 { return ^uint64(0) << (64 - n) }
	return top(b + normalization), top(b - normalization)
}

// fastCDC is a content-defined chunker: FastCDC (Xia et al., USENIX ATC
// 2016) with cut-point skipping and normalized chunking. See doc.go.
type fastCDC struct {
	r                  io.Reader
	min, avg, max      int
	maskHard, maskEasy uint64

	buf        []byte // buf[start:end] is read but not yet returned
	start, end int
	off        int64 // stream offset of buf[start]
	eof        bool  // r is exhausted; buf[start:end] is all that is left
	err        error // sticky: once reading failed, every later Next returns it
}

// NewFastCDC returns a content-defined chunker over r. Chunks are between min
// and max bytes (except the last, which may be shorter) and average about
// avg. The sizes must satisfy 64 <= min <= avg <= max <= chunkstore.MaxChunkSize.
//
// The chunker holds one buffer of about twice max bytes, whatever the
// length of the stream.
func NewFastCDC(r io.Reader, min, avg, max int) (Chunker, error) {
	if r == nil {
		return nil, fmt.Errorf("fastcdc chunker: nil reader")
	}
	c, err := newFastCDCCut(min, avg, max)
	if err != nil {
		return nil, err
	}
	c.r = r
	// One read fills at least max(max, 64 KiB) bytes, so refills, and the
	// copy of the unreturned tail each refill does, stay rare for small max.
	c.buf = getBuf(max + maxInt(max, 64<<10))
	return c, nil
}

// newFastCDCCut checks the sizes and returns a fastCDC with its masks set,
// and no reader or buffer yet: enough for cut.
func newFastCDCCut(min, avg, max int) (*fastCDC, error) {
	var why string
	switch {
	case min < 64:
		why = "min is below 64"
	case min > avg:
		why = "min is above avg"
	case avg > max:
		why = "avg is above max"
	case max > chunkstore.MaxChunkSize:
		why = fmt.Sprintf("max is above the limit of %d", chunkstore.MaxChunkSize)
	}
	if why != "" {
		return nil, fmt.Errorf("fastcdc chunk sizes min=%d avg=%d max=%d: %s (need 64 <= min <= avg <= max <= %d)",
			min, avg, max, why, chunkstore.MaxChunkSize)
	}
	c := &fastCDC{min: min, avg: avg, max: max}
	c.maskHard, c.maskEasy = fastcdcMasks(avg)
	return c, nil
}

// release returns the buffer to the pool at the end of the stream.
func (c *fastCDC) release() {
	putBuf(c.buf)
	c.buf, c.start, c.end = nil, 0, 0
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func (c *fastCDC) Next() (Chunk, error) {
	if c.err != nil {
		return Chunk{}, c.err
	}
	// A cut needs up to max bytes ahead of the chunk's start: without them
	// the chunk could end in a different place than it would in one read.
	if c.end-c.start < c.max && !c.eof {
		n := copy(c.buf, c.buf[c.start:c.end])
		c.start, c.end = 0, n
		m, eof, err := fill(c.r, c.buf[n:])
		c.end += m
		c.eof = eof
		if err != nil {
			c.err = err
			c.release()
			return Chunk{}, err
		}
	}
	data := c.buf[c.start:c.end]
	if len(data) == 0 {
		c.release()
		return Chunk{}, io.EOF
	}
	if len(data) > c.max {
		data = data[:c.max]
	}
	n := c.cut(data)
	ch := Chunk{Offset: c.off, Data: data[:n:n]}
	c.start += n
	c.off += int64(n)
	return ch, nil
}

// cut returns the length of the chunk at the start of data, which holds at
// most max bytes; fewer only at the end of the stream.
//
// The first min bytes are not hashed at all (cut-point skipping): no cut may
// fall there, and the hash restarts from zero at min. From min up to avg a
// cut needs the hard mask's bits of the hash to be zero, from avg up to max
// the easy mask's; failing both, the chunk is max bytes. The byte whose hash
// matched is the chunk's last byte.
func (c *fastCDC) cut(data []byte) int {
	if len(data) <= c.min {
		return len(data)
	}
	normal := c.avg
	if normal > len(data) {
		normal = len(data)
	}
	var fp uint64
	mask := c.maskHard
	// Ranging over subslices keeps the loops free of bounds checks; gear is
	// an array indexed by a byte, which needs none either. fp+fp+g, with g
	// loaded first, compiles on amd64 to one LEA, so the loop-carried
	// dependency is one cycle a byte rather than two for fp<<1 + gear[x]
	// (a shift, then an add from memory): about 1.5x faster.
	for i, x := range data[c.min:normal] {
		g := gear[x]
		fp = fp + fp + g // fp<<1 + g
		if fp&mask == 0 {
			return c.min + i + 1
		}
	}
	mask = c.maskEasy
	for i, x := range data[normal:] {
		g := gear[x]
		fp = fp + fp + g // fp<<1 + g
		if fp&mask == 0 {
			return normal + i + 1
		}
	}
	return len(data)
}
