//go:build ceph

package fs

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/casfs/casfs/chunkstore/rados"
	_ "github.com/casfs/casfs/versions/radosrepo" // rados://
)

// testStore is where mount makes its store: "" for a local one, or with
// CASFS_TEST_STORE=rados a rados:// location in a fresh namespace of the
// cluster integration/ceph/start-cluster.sh describes (CEPH_CONF,
// CASFS_CEPH_POOL), whose objects are removed when t ends.
func testStore(t *testing.T) string {
	t.Helper()
	if os.Getenv("CASFS_TEST_STORE") != "rados" {
		return ""
	}
	conf, pool := os.Getenv("CEPH_CONF"), os.Getenv("CASFS_CEPH_POOL")
	if conf == "" || pool == "" {
		t.Fatal("CASFS_TEST_STORE=rados but no Ceph cluster configured (CEPH_CONF, CASFS_CEPH_POOL: `. DIR/env` after integration/ceph/start-cluster.sh DIR)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	ns := fmt.Sprintf("fs-%s-%x", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), b)
	opts := rados.Options{ConfFile: conf, User: os.Getenv("CASFS_CEPH_USER"), Pool: pool, Namespace: ns}
	t.Cleanup(func() {
		if err := rados.Purge(context.Background(), opts); err != nil {
			t.Error(err)
		}
	})
	return "rados://" + pool + "/" + ns
}
