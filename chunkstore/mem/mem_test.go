package mem_test

import (
	"testing"

	"github.com/casfs/casfs/chunkstore"
	"github.com/casfs/casfs/chunkstore/chunkstoretest"
	"github.com/casfs/casfs/chunkstore/mem"
)

func TestConformance(t *testing.T) {
	chunkstoretest.Run(t, func(t *testing.T) chunkstore.Store { return mem.New() })
}

func TestConformanceShared(t *testing.T) {
	chunkstoretest.Run(t, func(t *testing.T) chunkstore.Store { return mem.NewShared(nil) })
}
