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

# Ceph: the RADOS chunk store against a throwaway single-node cluster on
# 127.0.0.1. The script installs Ceph and librados-dev (needed by -tags ceph)
# if missing; the cluster is torn down by its recorded PIDs on exit.
ceph_dir=$(mktemp -d)
trap 'integration/ceph/stop-cluster.sh "$ceph_dir"' EXIT
integration/ceph/start-cluster.sh "$ceph_dir" >/dev/null
. "$ceph_dir/env"
go vet -tags ceph ./...
go test -tags ceph -race -timeout 10m -count=1 ./chunkstore/rados/
