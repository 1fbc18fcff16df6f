package chunker

import "encoding/binary"

// testData returns n pseudo-random bytes from xorshift64* seeded with seed.
// The golden tests depend on these exact bytes, so the generator is written
// here rather than taken from math/rand, whose streams may change.
func testData(n int, seed uint64) []byte {
	b := make([]byte, (n+7)&^7)
	s := seed*0x9e3779b97f4a7c15 | 1
	for i := 0; i < len(b); i += 8 {
		s ^= s >> 12
		s ^= s << 25
		s ^= s >> 27
		binary.LittleEndian.PutUint64(b[i:], s*0x2545f4914f6cdd1d)
	}
	return b[:n]
}
