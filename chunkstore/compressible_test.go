package chunkstore

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestCompressibleGuess(t *testing.T) {
	random := make([]byte, 1<<20)
	rand.Read(random)
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog, again and again. "), 1<<20/60)
	if compressible(random) {
		t.Error("1 MiB of random bytes guessed compressible")
	}
	if !compressible(text) {
		t.Error("1 MiB of text guessed incompressible")
	}
	if !compressible(random[:1000]) {
		t.Error("small chunks must always be tried")
	}
}
