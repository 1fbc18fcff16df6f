#!/usr/bin/env bash
# The README's first command: install what is needed, build casfs, and run its
# main job on the embedded local store: store a file, store a changed version,
# list the versions and read the old one back.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH=$PATH:/usr/local/go/bin
go build -o bin/casfs ./cmd/casfs
casfs=$PWD/bin/casfs
work=${CASFS_DEMO_DIR:-$(mktemp -d /tmp/casfs-demo.XXXXXX)}
store=$work/store
echo "== casfs init $store"
"$casfs" init "$store"
seq 1 100000 >"$work/report.txt"
echo "== casfs put: first version"
"$casfs" put "$store" docs/report.txt "$work/report.txt"
sed -i 's/^5000$/five thousand/' "$work/report.txt"
echo "== casfs put: changed file, second version"
"$casfs" put "$store" docs/report.txt "$work/report.txt"
echo "== casfs versions"
"$casfs" versions "$store" docs/report.txt
first=$("$casfs" versions "$store" docs/report.txt | awk 'NR==2 {print $1}')
echo "== casfs get --version $first (the old one), diff against the new one"
"$casfs" get "$store" docs/report.txt --version "$first" -o "$work/old.txt"
diff "$work/old.txt" "$work/report.txt" || true
echo "== casfs stats"
"$casfs" stats "$store"
echo "== casfs fsck"
"$casfs" fsck "$store"
echo "demo store left in $store"
