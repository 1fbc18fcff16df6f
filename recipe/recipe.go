package recipe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/casfs/casfs/chunkstore"
)

// Extent maps bytes [Offset, Offset+Size) of a file to the chunk ID.
type Extent struct {
	Offset int64
	Size   int64
	ID     chunkstore.ID
}

// End is the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Size }

// Recipe is one version of a file. Extents are sorted by Offset, do not
// overlap, and lie within [0, Size).
type Recipe struct {
	Size    int64
	Extents []Extent
}

// ErrInvalid is matched by every error from Decode and Validate.
var ErrInvalid = errors.New("invalid recipe")

// Validate checks the invariants of a Recipe.
func (r *Recipe) Validate() error {
	if r.Size < 0 {
		return fmt.Errorf("%w: negative size %d", ErrInvalid, r.Size)
	}
	var end int64
	for i, e := range r.Extents {
		switch {
		case e.Size <= 0:
			return fmt.Errorf("%w: extent %d has size %d", ErrInvalid, i, e.Size)
		case e.Offset < end:
			return fmt.Errorf("%w: extent %d at %d overlaps or precedes the one before (ending %d)", ErrInvalid, i, e.Offset, end)
		case e.Size > chunkstore.MaxChunkSize:
			return fmt.Errorf("%w: extent %d has size %d, above the %d chunk limit", ErrInvalid, i, e.Size, chunkstore.MaxChunkSize)
		case e.End() > r.Size:
			return fmt.Errorf("%w: extent %d ends at %d, past the file size %d", ErrInvalid, i, e.End(), r.Size)
		}
		end = e.End()
	}
	return nil
}

// ExtentsInRange returns the extents that overlap [off, off+length), in
// order, found by binary search. An extent that wholly contains the range is
// returned too (the seed chunker lost it, so a small read inside one chunk
// found nothing). The result aliases r.Extents.
func (r *Recipe) ExtentsInRange(off, length int64) []Extent {
	if length <= 0 || off >= r.Size {
		return nil
	}
	end := off + length
	i := r.firstEndingAfter(off)
	j := i
	for j < len(r.Extents) && r.Extents[j].Offset < end {
		j++
	}
	return r.Extents[i:j]
}

// firstEndingAfter returns the index of the first extent that ends after
// off (len(r.Extents) if none), by binary search: the extent holding off if
// one does, else the next one.
func (r *Recipe) firstEndingAfter(off int64) int {
	return sort.Search(len(r.Extents), func(i int) bool { return r.Extents[i].End() > off })
}

// Holes returns how many of the file's bytes no extent covers.
func (r *Recipe) Holes() int64 {
	data := int64(0)
	for _, e := range r.Extents {
		data += min(e.End(), r.Size) - min(e.Offset, r.Size)
	}
	return r.Size - data
}

// SeekData returns where the first byte of data at or after off is, as
// lseek(2)'s SEEK_DATA does: off itself inside an extent, the start of the
// next extent inside a hole, and false at or past the end of the file or
// when only a hole is left.
func (r *Recipe) SeekData(off int64) (int64, bool) {
	if off < 0 || off >= r.Size {
		return 0, false
	}
	i := r.firstEndingAfter(off)
	if i == len(r.Extents) || r.Extents[i].Offset >= r.Size {
		return 0, false
	}
	return max(off, r.Extents[i].Offset), true
}

// SeekHole returns where the first hole at or after off begins, as
// lseek(2)'s SEEK_HOLE does: off itself inside a hole, the end of a run of
// touching extents inside data, and the file's size if data runs to the end
// (the end of a file counts as a hole). It is false at or past the end.
func (r *Recipe) SeekHole(off int64) (int64, bool) {
	if off < 0 || off >= r.Size {
		return 0, false
	}
	i := r.firstEndingAfter(off)
	if i == len(r.Extents) || r.Extents[i].Offset > off {
		return off, true
	}
	end := r.Extents[i].End()
	for i++; i < len(r.Extents) && r.Extents[i].Offset == end; i++ {
		end = r.Extents[i].End()
	}
	return min(end, r.Size), true
}

// Fetch returns the plain bytes of a chunk.
type Fetch func(ctx context.Context, id chunkstore.ID) ([]byte, error)

// ReadAt fills p with the file's bytes from off, like io.ReaderAt: holes read
// as zeros, and a read that reaches the end of the file returns the bytes up
// to it with io.EOF. It holds no state, so any number of calls may run at
// once. A chunk whose length does not match its extent is reported as corrupt.
func (r *Recipe) ReadAt(ctx context.Context, p []byte, off int64, fetch Fetch) (int, error) {
	var vecs [8][]byte
	parts, n, err := r.Slices(ctx, off, len(p), fetch, vecs[:0])
	pos := 0
	for _, v := range parts {
		pos += copy(p[pos:], v)
	}
	return n, err
}

// zeros backs the holes Slices returns. Nothing may write to it.
var zeros [64 << 10]byte

// Slices is ReadAt without the copy: it appends to vecs the pieces that make
// up the file's bytes [off, off+n) (fewer at the end of the file), in order,
// and returns them with their total length. The pieces are subslices of what
// fetch returned and, for holes, of a shared zero buffer: the caller must not
// modify them. On an error, the pieces before the failing chunk are
// returned with their length. A read that reaches the end of the file
// returns io.EOF with its bytes, like ReadAt.
func (r *Recipe) Slices(ctx context.Context, off int64, n int, fetch Fetch, vecs [][]byte) ([][]byte, int, error) {
	if off < 0 {
		return vecs, 0, fmt.Errorf("recipe: negative offset %d", off)
	}
	if off >= r.Size {
		return vecs, 0, io.EOF
	}
	length := int64(n)
	var eof error
	if off+length >= r.Size {
		length = r.Size - off
		eof = io.EOF
	}
	end := off + length
	pos := off // file offset of the next byte to append
	hole := func(to int64) {
		for pos < to {
			k := min(to-pos, int64(len(zeros)))
			vecs = append(vecs, zeros[:k])
			pos += k
		}
	}
	for _, e := range r.ExtentsInRange(off, length) {
		hole(e.Offset)
		data, err := fetch(ctx, e.ID)
		if err != nil {
			return vecs, int(pos - off), err
		}
		if int64(len(data)) != e.Size {
			return vecs, int(pos - off), &chunkstore.CorruptError{ID: e.ID,
				Reason: fmt.Sprintf("chunk has %d bytes, recipe extent at %d says %d", len(data), e.Offset, e.Size)}
		}
		to := min(e.End(), end)
		vecs = append(vecs, data[pos-e.Offset:to-e.Offset])
		pos = to
	}
	hole(end) // trailing hole
	return vecs, int(length), eof
}

// Encoding, version 1:
//
//	"casR" | u8 version=1 | uvarint size | uvarint count |
//	count × (uvarint gap since previous extent end | uvarint size | 32-byte id)
var magic = []byte("casR")

const encodingVersion = 1

// Encode returns the stored form of r. r must be valid.
func (r *Recipe) Encode() []byte {
	b := make([]byte, 0, 5+2*binary.MaxVarintLen64+len(r.Extents)*(chunkstore.IDSize+8))
	b = append(b, magic...)
	b = append(b, encodingVersion)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendUvarint(b, uint64(len(r.Extents)))
	var end int64
	for _, e := range r.Extents {
		b = binary.AppendUvarint(b, uint64(e.Offset-end))
		b = binary.AppendUvarint(b, uint64(e.Size))
		b = append(b, e.ID[:]...)
		end = e.End()
	}
	return b
}

// Decode parses the stored form of a recipe and validates it.
func Decode(b []byte) (*Recipe, error) {
	if len(b) < len(magic)+1 || string(b[:len(magic)]) != string(magic) {
		return nil, fmt.Errorf("%w: missing header", ErrInvalid)
	}
	if v := b[len(magic)]; v != encodingVersion {
		return nil, fmt.Errorf("%w: encoding version %d (this casfs knows %d)", ErrInvalid, v, encodingVersion)
	}
	b = b[len(magic)+1:]
	next := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, fmt.Errorf("%w: truncated or bad %s", ErrInvalid, what)
		}
		b = b[n:]
		return v, nil
	}
	size, err := next("size")
	if err != nil {
		return nil, err
	}
	count, err := next("extent count")
	if err != nil {
		return nil, err
	}
	const minExtent = 2 + chunkstore.IDSize
	if size > 1<<62 || count > uint64(len(b)/minExtent) {
		return nil, fmt.Errorf("%w: %d extents cannot fit in %d bytes", ErrInvalid, count, len(b))
	}
	r := &Recipe{Size: int64(size), Extents: make([]Extent, 0, count)}
	var end uint64
	for i := uint64(0); i < count; i++ {
		gap, err := next("extent offset")
		if err != nil {
			return nil, err
		}
		esize, err := next("extent size")
		if err != nil {
			return nil, err
		}
		if len(b) < chunkstore.IDSize {
			return nil, fmt.Errorf("%w: truncated in extent %d", ErrInvalid, i)
		}
		if gap > size || esize > size || end+gap > size {
			return nil, fmt.Errorf("%w: extent %d lies past the file size %d", ErrInvalid, i, size)
		}
		e := Extent{Offset: int64(end + gap), Size: int64(esize)}
		copy(e.ID[:], b)
		b = b[chunkstore.IDSize:]
		r.Extents = append(r.Extents, e)
		end = uint64(e.End())
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(b))
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// StoredSize is the number of bytes of chunk data the recipe references
// (file size less holes).
func (r *Recipe) StoredSize() int64 {
	var n int64
	for _, e := range r.Extents {
		n += e.Size
	}
	return n
}

// Load fetches the recipe chunk id and decodes it; errors name the recipe.
func Load(ctx context.Context, id chunkstore.ID, fetch Fetch) (*Recipe, error) {
	b, err := fetch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", id.Str(), err)
	}
	rec, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("recipe %s: %w", id.Str(), err)
	}
	return rec, nil
}
