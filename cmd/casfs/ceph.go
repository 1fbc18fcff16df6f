//go:build ceph

package main

// The rados:// scheme: stores in a Ceph RADOS pool.
import _ "github.com/casfs/casfs/versions/radosrepo"
