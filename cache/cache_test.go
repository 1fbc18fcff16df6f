package cache_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/casfs/casfs/cache"
	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
	"github.com/casfs/casfs/chunkstore/mem"
)

// The cache decorator keeps the Store contract, like every decorator.
func TestConformance(t *testing.T) {
	chunkstoretest.Run(t, func(t *testing.T) chunkstore.Store {
		enc, err := chunkstore.NewEncoded(mem.New(), chunkstore.HashBLAKE3, chunkstore.CompressionZstd)
		if err != nil {
			t.Fatal(err)
		}
		return cache.Wrap(enc, 8<<20)
	})
}

func chunk(n int, b byte) ([]byte, chunkstore.ID) {
	d := bytes.Repeat([]byte{b}, n)
	return d, chunkstore.HashBLAKE3.Sum(d)
}

func TestBoundedInBytes(t *testing.T) {
	c := cache.New(10 << 10)
	for i := 0; i < 10; i++ {
		d, id := chunk(3<<10, byte(i))
		got, err := c.Get(context.Background(), id, func(context.Context) ([]byte, error) { return d, nil })
		if err != nil || !bytes.Equal(got, d) {
			t.Fatalf("Get %d: %v", i, err)
		}
		if c.Size() > 10<<10 {
			t.Fatalf("cache holds %d bytes, bound is %d", c.Size(), 10<<10)
		}
	}
	// The newest three fit; the oldest were evicted.
	_, newest := chunk(3<<10, 9)
	_, oldest := chunk(3<<10, 0)
	if !c.Contains(newest) || c.Contains(oldest) {
		t.Fatalf("LRU order: newest cached %v, oldest cached %v", c.Contains(newest), c.Contains(oldest))
	}
	// A chunk bigger than the whole cache is served but not kept.
	big, bigID := chunk(20<<10, 'x')
	if got, _ := c.Get(context.Background(), bigID, func(context.Context) ([]byte, error) { return big, nil }); !bytes.Equal(got, big) || c.Contains(bigID) {
		t.Fatal("oversized chunk")
	}
}

func TestFetchOnceForConcurrentReaders(t *testing.T) {
	c := cache.New(1 << 20)
	d, id := chunk(1000, 'a')
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) ([]byte, error) {
		fetches.Add(1)
		<-release
		return d, nil
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			if got, err := c.Get(context.Background(), id, fetch); err != nil || !bytes.Equal(got, d) {
				t.Errorf("Get: %v", err)
			}
		}()
	}
	for i := 0; i < 16; i++ {
		<-started
	}
	close(release)
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for one chunk, want 1", n)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := cache.New(1 << 20)
	d, id := chunk(100, 'e')
	boom := errors.New("boom")
	if _, err := c.Get(context.Background(), id, func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("first Get: %v", err)
	}
	got, err := c.Get(context.Background(), id, func(context.Context) ([]byte, error) { return d, nil })
	if err != nil || !bytes.Equal(got, d) {
		t.Fatalf("Get after a failed fetch: %v", err)
	}
}

func TestWaiterHonoursItsContext(t *testing.T) {
	c := cache.New(1 << 20)
	_, id := chunk(10, 'w')
	block := make(chan struct{})
	defer close(block)
	go c.Get(context.Background(), id, func(context.Context) ([]byte, error) { <-block; return nil, errors.New("late") })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, id, func(context.Context) ([]byte, error) { <-block; return nil, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
}
