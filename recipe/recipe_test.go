package recipe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/casfs/casfs/chunkstore"
)

// fixture builds a recipe and a chunk map from (offset, content) pieces.
// Bytes between pieces are holes.
type piece struct {
	off  int64
	data string
}

func fixture(size int64, pieces ...piece) (*Recipe, map[chunkstore.ID][]byte, []byte) {
	r := &Recipe{Size: size}
	chunks := map[chunkstore.ID][]byte{}
	want := make([]byte, size)
	for _, p := range pieces {
		id := chunkstore.HashBLAKE3.Sum([]byte(p.data))
		chunks[id] = []byte(p.data)
		r.Extents = append(r.Extents, Extent{Offset: p.off, Size: int64(len(p.data)), ID: id})
		copy(want[p.off:], p.data)
	}
	return r, chunks, want
}

func fetcher(chunks map[chunkstore.ID][]byte) Fetch {
	return func(_ context.Context, id chunkstore.ID) ([]byte, error) {
		b, ok := chunks[id]
		if !ok {
			return nil, chunkstore.NotFound(id)
		}
		return b, nil
	}
}

func TestReadAt(t *testing.T) {
	// File of 40 bytes: [0,10) "0123456789", hole [10,15), [15,25) "abcdefghij",
	// [25,30) "KLMNO", hole to the end [30,40).
	r, chunks, want := fixture(40,
		piece{0, "0123456789"}, piece{15, "abcdefghij"}, piece{25, "KLMNO"})
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		off     int64
		length  int
		wantN   int
		wantEOF bool
	}{
		{"strictly inside one extent", 3, 4, 4, false}, // the seed lost this extent
		{"whole extent exactly", 15, 10, 10, false},
		{"start of extent", 0, 1, 1, false},
		{"last byte of extent", 9, 1, 1, false},
		{"across adjacent extents", 20, 8, 8, false},
		{"across a hole", 8, 10, 10, false},
		{"inside a hole", 11, 3, 3, false},
		{"from hole into extent", 12, 6, 6, false},
		{"into the trailing hole", 28, 5, 5, false},
		{"up to the end exactly", 30, 10, 10, true},
		{"past the end: short read", 35, 20, 5, true},
		{"whole file", 0, 40, 40, true},
		{"at the end", 40, 5, 0, true},
		{"beyond the end", 100, 5, 0, true},
		{"empty read", 5, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := bytes.Repeat([]byte{0xee}, tc.length) // dirty buffer: holes must be zeroed
			n, err := r.ReadAt(context.Background(), p, tc.off, fetcher(chunks))
			if n != tc.wantN {
				t.Fatalf("n = %d, want %d", n, tc.wantN)
			}
			if gotEOF := err == io.EOF; gotEOF != tc.wantEOF || (err != nil && err != io.EOF) {
				t.Fatalf("err = %v, want EOF %v", err, tc.wantEOF)
			}
			if n > 0 && !bytes.Equal(p[:n], want[tc.off:tc.off+int64(n)]) {
				t.Fatalf("got %q, want %q", p[:n], want[tc.off:tc.off+int64(n)])
			}
			// Slices gives the same bytes, as pieces.
			vecs, sn, serr := r.Slices(context.Background(), tc.off, tc.length, fetcher(chunks), nil)
			if sn != n || serr != err {
				t.Fatalf("Slices: n = %d, err = %v; ReadAt: %d, %v", sn, serr, n, err)
			}
			if got := bytes.Join(vecs, nil); !bytes.Equal(got, p[:n]) {
				t.Fatalf("Slices: got %q, want %q", got, p[:n])
			}
		})
	}
}

// Slices hands out the fetched chunks themselves, not copies, and splits a
// hole larger than its zero buffer into several pieces.
func TestSlicesAliasChunksAndSplitHoles(t *testing.T) {
	const hole = 200 << 10
	r, chunks, want := fixture(hole+20, piece{0, "0123456789"}, piece{hole + 10, "abcdefghij"})
	vecs, n, err := r.Slices(context.Background(), 5, hole+10, fetcher(chunks), nil)
	if err != nil || n != hole+10 {
		t.Fatalf("n = %d, err = %v", n, err)
	}
	if got := bytes.Join(vecs, nil); !bytes.Equal(got, want[5:5+n]) {
		t.Fatal("wrong bytes")
	}
	first, last := vecs[0], vecs[len(vecs)-1]
	if &first[0] != &chunks[r.Extents[0].ID][5] || &last[0] != &chunks[r.Extents[1].ID][0] {
		t.Fatal("pieces are copies, not the fetched chunks")
	}
	if len(vecs) < 2+hole/len(zeros) {
		t.Fatalf("%d pieces for a %d-byte hole", len(vecs), hole)
	}
	for _, v := range vecs {
		if len(v) == 0 {
			t.Fatal("empty piece")
		}
	}
}

func TestReadAtErrors(t *testing.T) {
	r, chunks, _ := fixture(20, piece{0, "0123456789"}, piece{10, "abcdefghij"})
	delete(chunks, r.Extents[1].ID)
	p := make([]byte, 20)
	n, err := r.ReadAt(context.Background(), p, 0, fetcher(chunks))
	if !errors.Is(err, chunkstore.ErrNotFound) || n != 10 {
		t.Fatalf("missing chunk: n=%d err=%v", n, err)
	}
	chunks[r.Extents[1].ID] = []byte("short")
	_, err = r.ReadAt(context.Background(), p, 0, fetcher(chunks))
	if !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("wrong-length chunk: err=%v, want corrupt", err)
	}
}

func TestExtentsInRange(t *testing.T) {
	r, _, _ := fixture(40, piece{0, "0123456789"}, piece{15, "abcdefghij"}, piece{25, "KLMNO"})
	offs := func(es []Extent) (o []int64) {
		for _, e := range es {
			o = append(o, e.Offset)
		}
		return o
	}
	for _, tc := range []struct {
		off, n int64
		want   []int64
	}{
		{3, 4, []int64{0}},
		{0, 40, []int64{0, 15, 25}},
		{10, 5, nil},
		{10, 6, []int64{15}},
		{24, 2, []int64{15, 25}},
		{30, 10, nil},
		{9, 7, []int64{0, 15}},
	} {
		if got := offs(r.ExtentsInRange(tc.off, tc.n)); !equal(got, tc.want) {
			t.Errorf("ExtentsInRange(%d, %d) = %v, want %v", tc.off, tc.n, got, tc.want)
		}
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEncodeDecode(t *testing.T) {
	r, _, _ := fixture(40, piece{0, "0123456789"}, piece{15, "abcdefghij"})
	// A sparse 1 TiB file: offsets beyond 32 bits must survive.
	r.Size = 1 << 40
	r.Extents = append(r.Extents, Extent{Offset: 1<<40 - 5, Size: 5, ID: chunkstore.HashBLAKE3.Sum([]byte("KLMNO"))})
	got, err := Decode(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != r.Size || len(got.Extents) != len(r.Extents) {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range r.Extents {
		if got.Extents[i] != r.Extents[i] {
			t.Fatalf("extent %d: %+v != %+v", i, got.Extents[i], r.Extents[i])
		}
	}
	empty, err := Decode((&Recipe{}).Encode())
	if err != nil || empty.Size != 0 || len(empty.Extents) != 0 {
		t.Fatalf("empty recipe: %+v %v", empty, err)
	}
}

// TestGolden pins the version-1 encoding: stored recipes must stay readable.
func TestGolden(t *testing.T) {
	var id chunkstore.ID
	for i := range id {
		id[i] = byte(i)
	}
	r := &Recipe{Size: 300, Extents: []Extent{{Offset: 0, Size: 100, ID: id}, {Offset: 200, Size: 100, ID: id}}}
	want := "casR\x01\xac\x02\x02\x00d" + string(id[:]) + "dd" + string(id[:])
	if got := string(r.Encode()); got != want {
		t.Fatalf("encoding changed:\n got %q\nwant %q", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	r, _, _ := fixture(40, piece{0, "0123456789"}, piece{15, "abcdefghij"})
	good := r.Encode()
	for i := 0; i < len(good); i++ {
		if _, err := Decode(good[:i]); !errors.Is(err, ErrInvalid) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrInvalid", i, err)
		}
	}
	bad := []struct {
		name string
		r    Recipe
	}{
		{"overlap", Recipe{Size: 40, Extents: []Extent{{0, 10, chunkstore.ID{}}, {5, 10, chunkstore.ID{}}}}},
		{"past end", Recipe{Size: 10, Extents: []Extent{{5, 10, chunkstore.ID{}}}}},
		{"zero size", Recipe{Size: 10, Extents: []Extent{{0, 0, chunkstore.ID{}}}}},
	}
	for _, tc := range bad {
		if err := tc.r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
	}
	v2 := append([]byte{}, good...)
	v2[4] = 2
	if _, err := Decode(v2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown version: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	r, _, _ := fixture(40, piece{0, "0123456789"}, piece{15, "abcdefghij"})
	f.Add(r.Encode())
	f.Add([]byte("casR\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid recipe: %v", err)
		}
		if again, err := Decode(got.Encode()); err != nil || again.Size != got.Size {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

// TestSeekDataHole checks SEEK_DATA and SEEK_HOLE on a recipe with data at
// [0,10), a hole, touching extents at [15,25) and [25,30), and a hole to the
// end at 40; and on one whose data runs to the end.
func TestSeekDataHole(t *testing.T) {
	r, _, _ := fixture(40, piece{0, "0123456789"}, piece{15, "abcdefghij"}, piece{25, "KLMNO"})
	full, _, _ := fixture(8, piece{0, "abcd"}, piece{4, "efgh"})
	const no = -1
	for _, tc := range []struct {
		r          *Recipe
		off        int64
		data, hole int64
	}{
		{r, 0, 0, 10},
		{r, 9, 9, 10},
		{r, 10, 15, 10},
		{r, 14, 15, 14},
		{r, 15, 15, 30}, // [15,25) and [25,30) touch: one run of data
		{r, 27, 27, 30},
		{r, 30, no, 30}, // only a hole is left
		{r, 39, no, 39},
		{r, 40, no, no}, // at the end: ENXIO for both
		{r, 100, no, no},
		{r, -1, no, no},
		{full, 0, 0, 8}, // the end of the file is a hole
		{full, 5, 5, 8},
		{&Recipe{Size: 0}, 0, no, no},
		{&Recipe{Size: 5}, 2, no, 2},
	} {
		got, ok := tc.r.SeekData(tc.off)
		if !ok {
			got = no
		}
		if got != tc.data {
			t.Errorf("size %d: SeekData(%d) = %d, want %d", tc.r.Size, tc.off, got, tc.data)
		}
		got, ok = tc.r.SeekHole(tc.off)
		if !ok {
			got = no
		}
		if got != tc.hole {
			t.Errorf("size %d: SeekHole(%d) = %d, want %d", tc.r.Size, tc.off, got, tc.hole)
		}
	}
}
