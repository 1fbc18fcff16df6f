package local

import (
	"bytes"
	"context"
	"testing"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
)

// heapBufs lends plain heap slices.
type heapBufs struct{}

func (heapBufs) Get(n int) []byte { return make([]byte, n) }
func (heapBufs) Put([]byte)       {}

// GetBuffered reads a chunk that was put and not synced yet (in its temp
// file) as well as one synced (under its name), like Get.
func TestGetBufferedPendingAndSynced(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, newStore(t), Options{})
	data := chunkstoretest.RandomBytes(9, 100_000)
	id := chunkstore.HashBLAKE3.Sum(data)
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"pending", "synced"} {
		got, _, err := s.GetBuffered(ctx, id, heapBufs{})
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GetBuffered of a %s chunk: %v, equal %v", when, err, bytes.Equal(got, data))
		}
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
