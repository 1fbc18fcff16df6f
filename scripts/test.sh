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
# cluster on 127.0.0.1 (installed with librados-dev, needed by -tags ceph,
# if missing; torn down by its recorded PIDs on exit): the chunk store's
# conformance suite, the catalog's, the fs mount tests (go-fuse's posixtest
# included) and the integration tests with real programs, each on a rados://
# store (CASFS_TEST_STORE=rados), plus the tests of two mounts of one pool
# and of the OSD going down under a mount. -p 1: that last one stops the
# cluster's only OSD, so no other package may use the cluster meanwhile.
ceph_dir=$(mktemp -d)
tests=""
trap '[[ -n $tests ]] && kill -TERM -- "-$tests" 2>/dev/null; integration/ceph/stop-cluster.sh "$ceph_dir"' EXIT
trap 'exit 130' INT TERM
integration/ceph/start-cluster.sh "$ceph_dir" >/dev/null
. "$ceph_dir/env"
go vet -tags ceph ./...
# The tests run in their own process group, watched: should the cluster stop
# taking writes, watchdog.sh prints its state and ends them within minutes
# rather than letting each test wait out its timeouts.
rc=0
CASFS_TEST_STORE=rados setsid go test -tags ceph -race -timeout 25m -count=1 -p 1 \
	./chunkstore/rados/ ./versions/radosrepo/ ./fs/ ./integration/ &
tests=$!
integration/ceph/watchdog.sh "$ceph_dir" "$tests" &
wait "$tests" || rc=$?
if ((rc != 0)); then
	echo "test.sh: the Ceph tests failed (exit $rc); the cluster's state:" >&2
	integration/ceph/diagnose.sh "$ceph_dir" >&2
fi
wait # the watchdog, which ends with the tests
exit "$rc"
