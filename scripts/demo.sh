#!/usr/bin/env bash
# The README's first command: install what is needed, build casfs, and run its
# main job on the embedded local store: mount it, copy files in, change one,
# read the old version back from .versions/, restore it with cp, unmount, and
# look at the store from the command line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH=$PATH:/usr/local/go/bin
go build -o bin/casfs ./cmd/casfs
casfs=$PWD/bin/casfs
work=${CASFS_DEMO_DIR:-$(mktemp -d /tmp/casfs-demo.XXXXXX)}
store=$work/store mnt=$work/mnt
mkdir -p "$mnt"

step() { printf '\n== %s\n' "$*"; }
step "casfs init $store"
"$casfs" init "$store"

step "casfs mount $store $mnt (in the background; logs in $work/mount.log)"
"$casfs" mount "$store" "$mnt" 2>"$work/mount.log" &
pid=$!
trap '"$casfs" umount "$mnt" 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
mountpoint -q "$mnt" || { cat "$work/mount.log"; exit 1; }

step "copy files in with cp"
mkdir "$mnt/docs"
seq 1 100000 >"$mnt/docs/report.txt"
cp -r /usr/share/common-licenses "$mnt/licenses"
ls -l "$mnt" "$mnt/docs"

step "change a file: a new version on close"
sed -i 's/^5000$/five thousand/' "$mnt/docs/report.txt"
ls -l "$mnt/.versions/docs/report.txt/"

step "read the old version back from .versions/"
old=$(ls "$mnt/.versions/docs/report.txt/" | head -n 1)
diff "$mnt/.versions/docs/report.txt/$old" "$mnt/docs/report.txt" || true

step "restore it: cp makes a new version with the old content"
cp "$mnt/.versions/docs/report.txt/$old" "$mnt/docs/report.txt"
grep -c "five thousand" "$mnt/docs/report.txt" || true
ls "$mnt/.versions/docs/report.txt/"

step "casfs umount $mnt"
"$casfs" umount "$mnt"
wait $pid
trap - EXIT

step "casfs versions $store docs/report.txt"
"$casfs" versions "$store" docs/report.txt
step "casfs stats $store"
"$casfs" stats "$store"
step "casfs fsck $store"
"$casfs" fsck "$store"
printf '\ndemo store left in %s (mount it again with: %s mount %s %s)\n' "$store" "$casfs" "$store" "$mnt"
