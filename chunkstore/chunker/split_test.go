package chunker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casfs/casfs/chunkstore"
)

// serialCuts returns the chunk ends New cuts from data.
func serialCuts(t testing.TB, cfg chunkstore.ChunkerConfig, data []byte) []int64 {
	t.Helper()
	c, err := New(cfg, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return ends
		}
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, ch.Offset+int64(len(ch.Data)))
	}
}

// splitCuts runs split over data and returns its chunk ends, checking that
// offsets follow each other and that each chunk's bytes are data's there
// when done is called, which happens later and out of order on other
// goroutines: a buffer reused too early shows as wrong bytes.
func splitCuts(t testing.TB, c cutter, data []byte, workers, blockSize int) []int64 {
	t.Helper()
	var (
		ends    []int64
		next    int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		badData []string
	)
	rng := rand.New(rand.NewPCG(uint64(len(data)), uint64(workers)))
	err := split(context.Background(), c, bytes.NewReader(data), int64(len(data)), workers, blockSize, func(ch Chunk, done func()) error {
		if ch.Offset != next {
			return fmt.Errorf("chunk at %d, want %d", ch.Offset, next)
		}
		if len(ch.Data) == 0 || cap(ch.Data) != len(ch.Data) {
			return fmt.Errorf("chunk at %d: len %d cap %d", ch.Offset, len(ch.Data), cap(ch.Data))
		}
		next += int64(len(ch.Data))
		ends = append(ends, next)
		delay := time.Duration(rng.IntN(200)) * time.Microsecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			if !bytes.Equal(ch.Data, data[ch.Offset:ch.Offset+int64(len(ch.Data))]) {
				mu.Lock()
				badData = append(badData, fmt.Sprintf("chunk at %d", ch.Offset))
				mu.Unlock()
			}
			done()
		}()
		return nil
	})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(badData) > 0 {
		t.Fatalf("%d chunks changed before done, first %s", len(badData), badData[0])
	}
	return ends
}

// splitInputs are streams on which Split must agree with the chunkers:
// random data, zeros (cut only at max, so blocks never fall in step), and
// random data broken by runs of zeros and of a short repeated pattern.
func splitInputs() map[string][]byte {
	mixed := testData(3<<20, 21)
	clear(mixed[300000:700000])
	copy(mixed[1500000:], bytes.Repeat([]byte("casfs!"), 100000))
	clear(mixed[2900000:])
	return map[string][]byte{
		"random": testData(3<<20+12345, 20),
		"zeros":  make([]byte, 1<<20+77),
		"mixed":  mixed,
	}
}

// TestSplitSameCuts: Split's chunks are the serial chunker's, whatever the
// number of goroutines and the block size, for both chunkers, on streams
// of every length around block and chunk sizes.
func TestSplitSameCuts(t *testing.T) {
	configs := []chunkstore.ChunkerConfig{
		{Algorithm: "fastcdc", Min: smallMin, Avg: smallAvg, Max: smallMax},
		{Algorithm: "fastcdc", Min: 64, Avg: 256, Max: 1024},
		{Algorithm: "fastcdc", Min: 1000, Avg: 3000, Max: 7777}, // odd sizes: blocks round to a multiple of max
		{Algorithm: "fixed", Size: 4096},
		{Algorithm: "fixed", Size: 5000},
	}
	for name, data := range splitInputs() {
		for _, cfg := range configs {
			c, err := newCutter(cfg)
			if err != nil {
				t.Fatal(err)
			}
			max := c.limit()
			lengths := []int{0, 1, 63, max - 1, max, max + 1, 2*max + 5, 5 * max, 64<<10 + 3, len(data)}
			for _, n := range lengths {
				if n > len(data) {
					continue
				}
				want := serialCuts(t, cfg, data[:n])
				for _, workers := range []int{1, 2, 8} {
					for _, bs := range []int{1, 64 << 10} { // 1: the smallest, two chunks of max
						got := splitCuts(t, c, data[:n], workers, bs)
						if !equalCuts(got, want) {
							t.Fatalf("%s, %+v, %d bytes, %d workers, block %d: %d chunks, want %d; first difference at chunk %d",
								name, cfg, n, workers, bs, len(got), len(want), firstDiff(got, want))
						}
					}
				}
			}
		}
	}
}

// TestSplitDefault: the same on the golden default parameters through the
// exported entry point, over a stream of many real blocks.
func TestSplitDefault(t *testing.T) {
	cfg := chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: goldenMin, Avg: goldenAvg, Max: goldenMax}
	data := testData(100<<20, 22)
	want := serialCuts(t, cfg, data)
	var got []int64
	err := Split(context.Background(), cfg, bytes.NewReader(data), int64(len(data)), 2, func(ch Chunk, done func()) error {
		if !bytes.Equal(ch.Data, data[ch.Offset:ch.Offset+int64(len(ch.Data))]) {
			return fmt.Errorf("chunk at %d: wrong bytes", ch.Offset)
		}
		got = append(got, ch.Offset+int64(len(ch.Data)))
		done()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !equalCuts(got, want) {
		t.Fatalf("%d chunks, want %d; first difference at chunk %d", len(got), len(want), firstDiff(got, want))
	}
}

func equalCuts(a, b []int64) bool {
	return firstDiff(a, b) < 0
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestSplitConcurrent: Splits running side by side (the later ones on the
// smallest window) still cut exactly what the chunker cuts.
func TestSplitConcurrent(t *testing.T) {
	cfg := chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: smallMin, Avg: smallAvg, Max: smallMax}
	c, _ := newCutter(cfg)
	inputs := splitInputs()
	wants := map[string][]int64{}
	for name, data := range inputs {
		wants[name] = serialCuts(t, cfg, data)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 3*len(inputs))
	for round := range 3 {
		for name, data := range inputs {
			wg.Add(1)
			go func() { // no t.Fatal here: not the test's goroutine
				defer wg.Done()
				var got []int64
				err := split(context.Background(), c, bytes.NewReader(data), int64(len(data)), 2, 64<<10, func(ch Chunk, done func()) error {
					defer done()
					if !bytes.Equal(ch.Data, data[ch.Offset:ch.Offset+int64(len(ch.Data))]) {
						return fmt.Errorf("chunk at %d: wrong bytes", ch.Offset)
					}
					got = append(got, ch.Offset+int64(len(ch.Data)))
					return nil
				})
				if err != nil || !equalCuts(got, wants[name]) {
					errs <- fmt.Sprintf("round %d, %s: %v; %d chunks, want %d; first difference at chunk %d",
						round, name, err, len(got), len(wants[name]), firstDiff(got, wants[name]))
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := len(blocks); n != maxBlocks {
		t.Errorf("%d of %d block buffers given back", n, maxBlocks)
	}
}

// failAt is a ReaderAt over data that fails every read reaching past at.
type failAt struct {
	data []byte
	at   int64
	err  error
}

func (r failAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.at {
		return 0, r.err
	}
	return copy(p, r.data[off:]), nil
}

// TestSplitErrors: a failing read, a source shorter than promised, an
// error from emit and a cancelled ctx each stop Split with that error,
// after the chunks before it, and leave no goroutine behind and no block
// buffer taken.
func TestSplitErrors(t *testing.T) {
	c, _ := newCutter(chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: smallMin, Avg: smallAvg, Max: smallMax})
	data := testData(2<<20, 23)
	n := int64(len(data))
	errEmit := errors.New("emit failed")
	before := runtime.NumGoroutine()
	for _, tc := range []struct {
		name    string
		r       io.ReaderAt
		n       int64
		emitErr int // fail the emit of this chunk (from 1)
		cancel  int // cancel ctx at this chunk
		want    error
		wantMsg string
	}{
		{name: "read error", r: failAt{data, 1 << 20, errBoom}, n: n, want: errBoom, wantMsg: "reading bytes"},
		{name: "short source", r: bytes.NewReader(data[:n-10]), n: n, want: io.ErrUnexpectedEOF, wantMsg: "of 2097152"},
		{name: "emit error", r: bytes.NewReader(data), n: n, emitErr: 20, want: errEmit},
		{name: "cancelled", r: bytes.NewReader(data), n: n, cancel: 5, want: context.Canceled},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		emitted := 0
		err := split(ctx, c, tc.r, tc.n, 2, 128<<10, func(ch Chunk, done func()) error {
			defer done()
			emitted++
			if emitted == tc.cancel {
				cancel()
			}
			if emitted == tc.emitErr {
				return errEmit
			}
			return nil
		})
		cancel()
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.wantMsg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.want, tc.wantMsg)
		}
		if tc.emitErr > 0 && emitted != tc.emitErr {
			t.Errorf("%s: %d chunks emitted, want %d", tc.name, emitted, tc.emitErr)
		}
	}
	// Every block buffer is back, whichever way Split stopped.
	if n := len(blocks); n != maxBlocks {
		t.Errorf("%d of %d block buffers given back", n, maxBlocks)
	}
	// Goroutines of Split are gone once it returns.
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after, %d before", g, before)
	}
}

// BenchmarkSplit is BenchmarkFastCDC's work through Split on two
// goroutines (bytes.Reader's ReadAt copies, as pread from the page cache
// does).
func BenchmarkSplit(b *testing.B) {
	data := benchInput()
	cfg := chunkstore.ChunkerConfig{Algorithm: "fastcdc", Min: goldenMin, Avg: goldenAvg, Max: goldenMax}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		err := Split(context.Background(), cfg, bytes.NewReader(data), int64(len(data)), 2, func(ch Chunk, done func()) error {
			done()
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
