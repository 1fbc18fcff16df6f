package fs

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRandomOpsMatchModel drives one file through the mount with random
// writes, truncates, punched holes, reads, fsyncs and closes on up to three
// descriptors, and keeps the content it must have in memory. Every read and
// fstat must match it, and after every fsync and every close of a writing
// descriptor the version committed in the store (read from the repository,
// not through the mount) must be exactly it: what close or fsync returned
// for is durable. Small chunks and storing ahead every 256 KiB put the
// incremental commit, the store-ahead merge and the sparse-file segments
// under load; writes beyond the end leave holes of over 1 MiB.
//
// CASFS_MODEL_SEEDS=N runs N seeds instead of 3, or 1 under the race
// detector, which makes a seed take ~30 s (30 seeds found both bugs this
// test was written for: unsaved sizes lost by lookups, punched holes never
// committed; seeds 16 and 19 found the first).
func TestRandomOpsMatchModel(t *testing.T) {
	seeds := uint64(3)
	if raceEnabled {
		seeds = 1
	}
	if s := os.Getenv("CASFS_MODEL_SEEDS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CASFS_MODEL_SEEDS=%q: %v", s, err)
		}
		seeds = n
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomOps(t, seed) })
	}
}

func randomOps(t *testing.T, seed uint64) {
	m := mountWith(t, func(o *Options) { o.StoreAhead = 256 << 10 })
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	var key [32]byte
	key[0] = byte(seed)
	src := rand.NewChaCha8(key)
	p := m.path("model")
	var model []byte
	var fds []*os.File
	var log []string // the steps so far, to say how a failure came about
	fail := func(format string, args ...any) {
		t.Helper()
		tail := log
		if len(tail) > 12 {
			tail = tail[len(tail)-12:]
		}
		t.Fatalf("seed %d, step %d: %s\nlast steps:\n  %s", seed, len(log), fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
	}
	committed := func(when string) {
		t.Helper()
		a, err := m.repo.Resolve(ctx, "model")
		if err != nil {
			fail("%s: resolve: %v", when, err)
		}
		var got []byte
		if !a.Recipe.IsZero() {
			rec, err := m.repo.LoadRecipe(ctx, a.Recipe)
			if err != nil {
				fail("%s: recipe: %v", when, err)
			}
			var buf bytes.Buffer
			if err := m.repo.CopyOut(ctx, rec, &buf, nil); err != nil {
				fail("%s: copy out: %v", when, err)
			}
			got = buf.Bytes()
		}
		if !bytes.Equal(got, model) {
			fail("%s: committed HEAD (%d bytes) differs from what was written (%d bytes) at %d", when, len(got), len(model), firstDiff(got, model))
		}
	}
	randData := func(n int) []byte {
		b := make([]byte, n)
		if rng.IntN(5) > 0 { // else zeros: a hole in the making
			src.Read(b)
		}
		return b
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fds = append(fds, f)
	t.Cleanup(func() {
		// A failed step leaves descriptors open: unmounting waits for them.
		for _, f := range fds {
			f.Close()
		}
	})
	for range 300 {
		if len(fds) == 0 || (len(fds) < 3 && rng.IntN(8) == 0) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				fail("open: %v", err)
			}
			fds = append(fds, f)
			log = append(log, "open")
			continue
		}
		i := rng.IntN(len(fds))
		f := fds[i]
		size := int64(len(model))
		switch op := rng.IntN(20); {
		case op < 8: // write, mostly within or just past the end
			off := rng.Int64N(size + 64<<10)
			if rng.IntN(6) == 0 {
				off = size + 1<<20 + rng.Int64N(1<<20) // a hole of over 1 MiB
			}
			n := 1 + rng.IntN(200<<10)
			if rng.IntN(8) == 0 {
				n = 512<<10 + rng.IntN(1<<20)
			}
			if off+int64(n) > 6<<20 {
				off = rng.Int64N(max(size, 1))
			}
			data := randData(n)
			log = append(log, fmt.Sprintf("fd%d pwrite %d at %d", i, n, off))
			if k, err := f.WriteAt(data, off); err != nil || k != n {
				fail("pwrite %d at %d: %d, %v", n, off, k, err)
			}
			if end := off + int64(n); end > size {
				model = append(model, make([]byte, end-size)...)
			}
			copy(model[off:], data)
		case op < 10: // ftruncate, shorter or longer
			to := rng.Int64N(size + size/2 + 100<<10)
			log = append(log, fmt.Sprintf("fd%d ftruncate %d", i, to))
			if err := f.Truncate(to); err != nil {
				fail("ftruncate %d: %v", to, err)
			}
			if to < size {
				model = model[:to]
			} else {
				model = append(model, make([]byte, to-size)...)
			}
		case op < 11 && size > 0: // punch a hole
			off := rng.Int64N(size)
			n := 1 + rng.Int64N(min(size-off, 3<<20))
			log = append(log, fmt.Sprintf("fd%d punch %d at %d", i, n, off))
			if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
				fail("punch %d at %d: %v", n, off, err)
			}
			clear(model[off : off+n])
		case op < 15: // read a range and fstat
			off := rng.Int64N(size + 10)
			n := 1 + rng.IntN(300<<10)
			log = append(log, fmt.Sprintf("fd%d pread %d at %d", i, n, off))
			got := make([]byte, n)
			k, _ := f.ReadAt(got, off)
			want := model[min(off, size):min(off+int64(n), size)]
			if !bytes.Equal(got[:k], want) {
				fail("pread %d at %d: %d bytes, differing at %d; want %d bytes", n, off, k, firstDiff(got[:k], want), len(want))
			}
			if fi, err := f.Stat(); err != nil || fi.Size() != size {
				fail("fstat: size %v (%v), want %d", fi.Size(), err, size)
			}
		case op < 17:
			log = append(log, fmt.Sprintf("fd%d fsync", i))
			if err := f.Sync(); err != nil {
				fail("fsync: %v", err)
			}
			committed("after fsync")
		default:
			log = append(log, fmt.Sprintf("fd%d close", i))
			if err := f.Close(); err != nil {
				fail("close: %v", err)
			}
			fds = append(fds[:i], fds[i+1:]...)
			committed("after close")
			if len(fds) == 0 {
				// Nothing open: read all of it through HEAD's recipe.
				got, err := os.ReadFile(p)
				if err != nil || !bytes.Equal(got, model) {
					fail("reading back after the last close: %d bytes (%v), want %d, differing at %d", len(got), err, len(model), firstDiff(got, model))
				}
			}
		}
	}
	for len(fds) > 0 {
		if err := fds[0].Close(); err != nil {
			fail("close: %v", err)
		}
		fds = fds[1:]
	}
	committed("at the end")
}
