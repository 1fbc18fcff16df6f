package versions

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// VersionID orders versions by commit time. Nanos is the commit time in Unix
// nanoseconds, made strictly increasing by the catalog; Seq breaks the tie if
// two writers on different machines ever pick the same nanosecond. The seed
// used bare millisecond strings, which collide and sort wrongly; this type
// compares as numbers and has a fixed-width text form that sorts the same way.
type VersionID struct {
	Nanos int64
	Seq   uint32
}

// IsZero reports whether v is the zero ID (no version).
func (v VersionID) IsZero() bool { return v == VersionID{} }

// Time is the commit time.
func (v VersionID) Time() time.Time { return time.Unix(0, v.Nanos).UTC() }

// Compare returns -1, 0 or 1 as v is before, equal to or after w.
func (v VersionID) Compare(w VersionID) int {
	switch {
	case v.Nanos < w.Nanos:
		return -1
	case v.Nanos > w.Nanos:
		return 1
	case v.Seq < w.Seq:
		return -1
	case v.Seq > w.Seq:
		return 1
	}
	return 0
}

// Bytes is a 12-byte big-endian key that sorts like Compare.
func (v VersionID) Bytes() []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, uint64(v.Nanos))
	binary.BigEndian.PutUint32(b[8:], v.Seq)
	return b
}

// VersionIDFromBytes decodes Bytes.
func VersionIDFromBytes(b []byte) (VersionID, error) {
	if len(b) != 12 {
		return VersionID{}, fmt.Errorf("version id: want 12 bytes, got %d", len(b))
	}
	return VersionID{Nanos: int64(binary.BigEndian.Uint64(b)), Seq: binary.BigEndian.Uint32(b[8:])}, nil
}

const idLayout = "2006-01-02T15-04-05"

// String is the fixed-width, file-name-safe text form, sortable as text:
// "2026-11-22T01-47-03.123456789Z", with "-<seq>" (ten digits, so the text
// still sorts) appended when Seq is set.
func (v VersionID) String() string {
	t := v.Time()
	s := fmt.Sprintf("%s.%09dZ", t.Format(idLayout), t.Nanosecond())
	if v.Seq != 0 {
		s += fmt.Sprintf("-%010d", v.Seq)
	}
	return s
}

// ParseVersionID parses String's form.
func ParseVersionID(s string) (VersionID, error) {
	main, seqs, hasSeq := strings.Cut(s, "Z-")
	if hasSeq {
		main += "Z"
	}
	bad := fmt.Errorf("version %q: want a form like 2026-11-22T01-47-03.123456789Z", s)
	if len(main) != len(idLayout)+11 || main[len(idLayout)] != '.' || !strings.HasSuffix(main, "Z") {
		return VersionID{}, bad
	}
	t, err := time.ParseInLocation(idLayout, main[:len(idLayout)], time.UTC)
	if err != nil {
		return VersionID{}, bad
	}
	ns, err := strconv.ParseUint(main[len(idLayout)+1:len(main)-1], 10, 32)
	if err != nil {
		return VersionID{}, bad
	}
	v := VersionID{Nanos: t.UnixNano() + int64(ns)}
	if hasSeq {
		seq, err := strconv.ParseUint(seqs, 10, 32)
		if err != nil || seq == 0 || len(seqs) != 10 {
			return VersionID{}, bad
		}
		v.Seq = uint32(seq)
	}
	return v, nil
}
