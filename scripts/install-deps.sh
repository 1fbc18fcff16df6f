#!/usr/bin/env bash
# Installs what casfs needs on Debian 12 that a fresh machine may lack:
# fuse3 (fusermount3, for mounting), the programs the integration tests drive
# on a mount (git, sqlite3, tar, diff, find/xargs, stress-ng, dbench; CI
# fails rather than skips without them), and with --bench the peers the
# benchmarks compare against.
# Go itself is expected at /usr/local/go or on PATH.
set -euo pipefail
pkgs=(fuse3 git sqlite3 tar diffutils findutils stress-ng dbench)
if [[ "${1:-}" == "--bench" ]]; then
	pkgs+=(restic borgbackup)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing: ${missing[*]}" >&2
	sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "casfs needs Go: 1.26.8, or any Go from 1.21 on, which fetches 1.26.8 itself (https://go.dev/dl/)" >&2; exit 1; }
