//go:build ceph

package integration

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/casfs/casfs/chunkstore/rados"
)

// withCeph says whether casfs is built with the RADOS store (-tags ceph).
const withCeph = true

// radosStore returns a rados://POOL/NAMESPACE location in a fresh namespace
// of the cluster integration/ceph/start-cluster.sh describes in its env file
// (CEPH_CONF, CASFS_CEPH_POOL), and removes the namespace's objects when t
// ends. Without a cluster the test is skipped, or fails under
// CASFS_REQUIRE_EXTERNAL.
func radosStore(t *testing.T) string {
	t.Helper()
	conf, pool := os.Getenv("CEPH_CONF"), os.Getenv("CASFS_CEPH_POOL")
	if conf == "" || pool == "" {
		requireExternal(t, "a Ceph cluster (set CEPH_CONF and CASFS_CEPH_POOL: `. DIR/env` after integration/ceph/start-cluster.sh DIR)", fmt.Errorf("not configured"))
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	ns := fmt.Sprintf("it-%s-%x", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), b)
	opts := rados.Options{ConfFile: conf, User: os.Getenv("CASFS_CEPH_USER"), Pool: pool, Namespace: ns}
	t.Cleanup(func() { purgeNamespace(t, opts) })
	return "rados://" + pool + "/" + ns
}

// purgeNamespace removes the objects of a test store: the memstore cluster
// keeps everything in RAM.
func purgeNamespace(t *testing.T, opts rados.Options) {
	if err := rados.Purge(context.Background(), opts); err != nil {
		t.Error(err)
	}
}
