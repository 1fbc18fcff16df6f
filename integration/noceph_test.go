//go:build !ceph

package integration

import "testing"

// withCeph says whether casfs is built with the RADOS store (-tags ceph).
const withCeph = false

func radosStore(t *testing.T) string {
	t.Fatal("CASFS_TEST_STORE=rados needs the tests built with -tags ceph")
	return ""
}
