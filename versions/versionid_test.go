package versions

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func sampleIDs() []VersionID {
	ids := []VersionID{
		{Nanos: 0},
		{Nanos: 1},
		{Nanos: 999_999_999},
		{Nanos: 1_000_000_000},
		{Nanos: time.Date(2026, 11, 22, 1, 47, 3, 123456789, time.UTC).UnixNano()},
		{Nanos: time.Date(2026, 11, 22, 1, 47, 3, 123456789, time.UTC).UnixNano(), Seq: 1},
		{Nanos: time.Date(2026, 11, 22, 1, 47, 3, 123456789, time.UTC).UnixNano(), Seq: 2},
		{Nanos: time.Date(2026, 11, 22, 1, 47, 3, 123456789, time.UTC).UnixNano(), Seq: 10},
		{Nanos: time.Date(2026, 11, 22, 1, 47, 3, 123456790, time.UTC).UnixNano()},
		{Nanos: time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}, // near the end of int64 nanoseconds
		{Nanos: math.MaxInt64 / 2},
		{Nanos: 5, Seq: math.MaxUint32},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		v := VersionID{Nanos: r.Int64N(1 << 62)}
		if i%3 == 0 {
			v.Seq = r.Uint32N(20)
		}
		ids = append(ids, v)
	}
	return ids
}

func TestVersionIDStringRoundTrip(t *testing.T) {
	for _, v := range sampleIDs() {
		s := v.String()
		got, err := ParseVersionID(s)
		if err != nil || got != v {
			t.Errorf("ParseVersionID(%q) = %+v, %v; want %+v", s, got, err, v)
		}
		if strings.ContainsAny(s, "/: ") {
			t.Errorf("%q is not file-name safe", s)
		}
	}
	want := "2026-11-22T01-47-03.123456789Z"
	v := VersionID{Nanos: time.Date(2026, 11, 22, 1, 47, 3, 123456789, time.UTC).UnixNano()}
	if s := v.String(); s != want {
		t.Errorf("String = %q, want %q", s, want)
	}
	v.Seq = 3
	if s := v.String(); s != want+"-0000000003" {
		t.Errorf("String with seq = %q", s)
	}
}

func TestVersionIDBytesRoundTrip(t *testing.T) {
	for _, v := range sampleIDs() {
		b := v.Bytes()
		if len(b) != 12 {
			t.Fatalf("Bytes of %+v: %d bytes", v, len(b))
		}
		got, err := VersionIDFromBytes(b)
		if err != nil || got != v {
			t.Errorf("VersionIDFromBytes(%x) = %+v, %v; want %+v", b, got, err, v)
		}
	}
	for _, n := range []int{0, 11, 13} {
		if _, err := VersionIDFromBytes(make([]byte, n)); err == nil {
			t.Errorf("VersionIDFromBytes of %d bytes succeeded", n)
		}
	}
}

// TestVersionIDOrder checks that Compare, the text form and the byte form
// all sort the same way, so listings sorted by any of them agree.
func TestVersionIDOrder(t *testing.T) {
	var ids []VersionID
	for _, v := range sampleIDs() {
		if v.Seq < 10 {
			ids = append(ids, v)
		}
	}
	checkOrder(t, ids)
	t.Run("MultiDigitSeq", func(t *testing.T) {
		// Seq is written in fixed width, so "…Z-0000000010" sorts after
		// "…Z-0000000002" as text too.
		checkOrder(t, sampleIDs())
	})
	a, b := VersionID{Nanos: 5, Seq: 1}, VersionID{Nanos: 6}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 {
		t.Errorf("Compare(%v, %v) wrong", a, b)
	}
	if !(VersionID{}).IsZero() || a.IsZero() {
		t.Errorf("IsZero wrong")
	}
	if got := b.Time(); !got.Equal(time.Unix(0, 6)) || got.Location() != time.UTC {
		t.Errorf("Time = %v", got)
	}
}

func checkOrder(t *testing.T, ids []VersionID) {
	t.Helper()
	byCompare := slices.Clone(ids)
	slices.SortFunc(byCompare, VersionID.Compare)
	byString := slices.Clone(ids)
	slices.SortFunc(byString, func(a, b VersionID) int { return strings.Compare(a.String(), b.String()) })
	byBytes := slices.Clone(ids)
	slices.SortFunc(byBytes, func(a, b VersionID) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	for i := range byCompare {
		if byString[i] != byCompare[i] {
			t.Fatalf("text order differs at %d: %v vs %v", i, byString[i], byCompare[i])
		}
		if byBytes[i] != byCompare[i] {
			t.Fatalf("byte order differs at %d: %+v vs %+v", i, byBytes[i], byCompare[i])
		}
	}
}

func TestParseVersionIDErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"2026-11-22",
		"2026-11-22T01-47-03Z",
		"2026-11-22T01-47-03.12345678Z",             // 8 digits
		"2026-11-22T01-47-03.1234567890Z",           // 10 digits
		"2026-11-22T01:47:03.123456789Z",            // colons
		"2026-11-22T01-47-03.123456789",             // no Z
		"2026-11-22T01-47-03,123456789Z",            // comma
		"2026-13-22T01-47-03.123456789Z",            // month 13
		"2026-11-22T25-47-03.123456789Z",            // hour 25
		"2026-11-22T01-47-03.12345678xZ",            // letter in nanos
		"2026-11-22T01-47-03.-23456789Z",            // sign in nanos
		"2026-11-22T01-47-03.123456789Z-",           // empty seq
		"2026-11-22T01-47-03.123456789Z-0",          // seq 0 is written without a suffix
		"2026-11-22T01-47-03.123456789Z-x",          // bad seq
		"2026-11-22T01-47-03.123456789Z--1",         // negative seq
		"2026-11-22T01-47-03.123456789Z-4294967296", // seq overflow
		"2026-11-22T01-47-03.123456789Z-2",          // seq not fixed-width
		" 2026-11-22T01-47-03.123456789Z",
	} {
		if v, err := ParseVersionID(s); err == nil {
			t.Errorf("ParseVersionID(%q) = %+v, want an error", s, v)
		}
	}
}
