//go:build !ceph

package fs

import (
	"os"
	"testing"
)

// testStore is where mount makes its store: "" for a local one. Stores in
// Ceph need the tests built with -tags ceph.
func testStore(t *testing.T) string {
	if os.Getenv("CASFS_TEST_STORE") == "rados" {
		t.Fatal("CASFS_TEST_STORE=rados needs the tests built with -tags ceph")
	}
	return ""
}
