#!/usr/bin/env bash
# The README's test command, run by CI: installs what the tests need, then
# runs every test with the race detector, including the ones that mount real
# FUSE filesystems and drive them with ordinary programs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH=$PATH:/usr/local/go/bin
# Tests that need something external fail instead of skipping when this is set.
export CASFS_REQUIRE_EXTERNAL=1
gofmt_out=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$gofmt_out" ]]; then
	echo "gofmt would change: $gofmt_out" >&2
	exit 1
fi
go vet ./...
go test -race -timeout 30m -count=1 ./...

# Ceph: everything again on rados:// stores, against a throwaway single-node
# cluster on 127.0.0.1 (Ceph and librados-dev, which -tags ceph needs to
# build, installed first if missing; torn down by its recorded PIDs on
# exit): the chunk store's
# conformance suite, the catalog's, the fs mount tests (go-fuse's posixtest
# included) and the integration tests with real programs, each on a rados://
# store (CASFS_TEST_STORE=rados), plus the tests of two mounts of one pool
# and of the OSD going down under a mount. -p 1: that last one stops the
# cluster's only OSD, so no other package may use the cluster meanwhile.
integration/ceph/install.sh
go vet -tags ceph ./...
ceph_dir=""
tests=""
trap '[[ -n $tests ]] && kill -TERM -- "-$tests" 2>/dev/null; [[ -n $ceph_dir ]] && integration/ceph/stop-cluster.sh "$ceph_dir"' EXIT
trap 'exit 130' INT TERM

# ceph_tests: one run of the Ceph tests on a new cluster. They run in their
# own process group, watched: should the cluster stop taking writes,
# watchdog.sh prints its state and ends them within minutes rather than
# letting each test wait out its timeouts, and this returns 75.
ceph_tests() {
	local rc=0 wd=0
	ceph_dir=$(mktemp -d)
	integration/ceph/start-cluster.sh "$ceph_dir" >/dev/null || return 1
	. "$ceph_dir/env" || return 1
	CASFS_TEST_STORE=rados setsid go test -tags ceph -race -timeout 25m -count=1 -p 1 \
		./chunkstore/rados/ ./versions/radosrepo/ ./fs/ ./integration/ &
	tests=$!
	integration/ceph/watchdog.sh "$ceph_dir" "$tests" &
	local watchdog=$!
	wait "$tests" || rc=$?
	tests=""
	wait "$watchdog" || wd=$?
	if ((wd != 0)); then
		rc=75
	elif ((rc != 0)); then
		echo "test.sh: the Ceph tests failed (exit $rc); the cluster's state:" >&2
		integration/ceph/diagnose.sh "$ceph_dir" >&2
	fi
	integration/ceph/stop-cluster.sh "$ceph_dir"
	ceph_dir=""
	return "$rc"
}

# A cluster that stops taking writes (the watchdog fired; its report above
# says how) gets one more try on a fresh cluster: twice in a row fails.
rc=0
ceph_tests || rc=$?
if ((rc == 75)); then
	echo "test.sh: the test cluster stopped taking writes (report above); running the Ceph tests again on a new cluster" >&2
	rc=0
	ceph_tests || rc=$?
fi
exit "$rc"
