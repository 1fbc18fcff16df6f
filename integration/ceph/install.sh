#!/usr/bin/env bash
# Installs Ceph's daemons, its command-line tools and librados-dev (the
# headers go-ceph's cgo needs, for anything built with -tags ceph) from
# Debian's packages, if any of them is missing:
#
#   integration/ceph/install.sh
#
# start-cluster.sh runs it; scripts/test.sh runs it before `go vet -tags
# ceph`, which needs the headers before any cluster starts.
set -euo pipefail

log() { echo "ceph install: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

need=(ceph-mon ceph-osd ceph-common librados-dev)
missing=()
for p in "${need[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	log "installing ${missing[*]} from Debian's packages"
	t0=$SECONDS
	# The package lists may be missing or stale on a fresh machine.
	if ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
		$sudo apt-get update -qq
	fi
	# Nothing starts at install time here (no systemd); the postinst's
	# "Failed to connect to bus" is harmless.
	if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >"${TMPDIR:-/tmp}/casfs-ceph-apt.log" 2>&1; then
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
			"${missing[@]}" >"${TMPDIR:-/tmp}/casfs-ceph-apt.log" 2>&1 ||
			{
				tail -n 30 "${TMPDIR:-/tmp}/casfs-ceph-apt.log" >&2
				die "apt-get install ${missing[*]} failed"
			}
	fi
	log "installed in $((SECONDS - t0)) s"
fi
for cmd in ceph ceph-mon ceph-osd ceph-authtool monmaptool rados; do
	command -v "$cmd" >/dev/null || die "$cmd is missing after installing Ceph"
done

