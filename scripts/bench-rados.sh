#!/usr/bin/env bash
# RADOS benchmark: the cluster's own ceiling (`rados bench`, 4 MiB objects,
# 16 in flight) against casfs copying a 1 GiB file into a rados:// mount and
# reading it back, on the same throwaway cluster in one run.
#
#   scripts/bench-rados.sh                # from the repository root, as root
#
# Steps:
#   1. A throwaway cluster (integration/ceph/start-cluster.sh) with a 6 GiB
#      memstore OSD, in a temp dir; torn down at the end.
#   2. rados bench write, BENCH_SECS seconds but at most 1 GiB of objects
#      (--max-objects 256, so RAM stays bounded), then rados bench seq over
#      those objects, then cleanup.
#   3. casfs (built with -tags ceph): init rados://POOL/bench, mount, dd of a
#      1 GiB random file (in page cache) into the mount with bs=1M, timed
#      until dd exits, i.e. until close(2) returned and the version was
#      committed; unmount, drop caches, mount again (a cold chunk cache),
#      dd of the file to /dev/null, compared with the source (untimed).
#   4. The same file copied to a second name: every chunk is already in the
#      pool, so only touches and the recipe go over the wire.
#
# Environment: BENCH_DIR (scratch parent, default /var/tmp), BENCH_MB (1024),
# BENCH_SECS (30), BENCH_RESULTS (default bench-out/results.md), BENCH_RUNS
# (1: repeat steps 2-4 and report each run), BENCH_INIT_ARGS (extra flags for
# casfs init, e.g. "--chunk-size 4M"), BENCH_OBJ (rados bench's object size,
# default 4M; with BENCH_OBJ=1M it writes at most 1 GiB too).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=$PATH:/usr/local/go/bin
scripts/install-deps.sh
[[ -x /usr/bin/time ]] || apt_install time

MB=${BENCH_MB:-1024}
SECS_BENCH=${BENCH_SECS:-30}
RUNS=${BENCH_RUNS:-1}
OBJ=${BENCH_OBJ:-4M}
INIT_ARGS=${BENCH_INIT_ARGS:-}
case $OBJ in
4M) max_objects=256 ;;
1M) max_objects=1024 ;;
*) die "BENCH_OBJ: 4M or 1M" ;;
esac
RESULTS=${BENCH_RESULTS:-bench-out/results.md}
mkdir -p "$(dirname "$RESULTS")"
scratch=$(mktemp -d "${BENCH_DIR:-/var/tmp}/casfs-bench-rados.XXXXXX")
cluster=$scratch/cluster
mnt=$scratch/mnt
logf=$scratch/log
mkdir -p "$mnt"

cleanup() {
	if mountpoint -q "$mnt"; then fusermount3 -u "$mnt" || umount -l "$mnt" || true; fi
	integration/ceph/stop-cluster.sh "$cluster" || true
	rm -rf "$scratch"
}
trap cleanup EXIT

CASFS_CEPH_MEMSTORE_BYTES=$((6 << 30)) integration/ceph/start-cluster.sh "$cluster" >/dev/null
# shellcheck disable=SC1091
. "$cluster/env"
pool=$CASFS_CEPH_POOL
CASFS=$scratch/casfs
go build -tags ceph -o "$CASFS" ./cmd/casfs
rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
log "casfs $rev built with -tags ceph; cluster in $cluster"

src=$scratch/src
randfile "$src" $((MB << 20)) bench-rados
bytes=$(fsize "$src")

# bench_rados MODE [MAX_OBJECTS]: rados bench MODE. Sets RB_BW (its
# "Bandwidth (MB/sec)"), RB_BYTES (what it moved) and RB_TICKS (the
# machine's busy CPU meanwhile, see cpu_busy).
bench_rados() {
	local out t0
	local size=()
	[[ $1 == write ]] && size=(-b "$OBJ") # seq reads the objects write made
	t0=$(cpu_busy)
	out=$(rados -p "$pool" bench "$SECS_BENCH" "$1" -t 16 "${size[@]}" --no-cleanup \
		${2:+--max-objects "$2"} 2>&1) || { echo "$out" >&2; die "rados bench $1 failed"; }
	RB_TICKS=$(($(cpu_busy) - t0))
	echo "$out" >>"$logf"
	RB_BW=$(awk -F: '/^Bandwidth \(MB\/sec\)/ { gsub(/ /, "", $2); print $2 }' <<<"$out")
	RB_BYTES=$(awk -F: '/^Total (writes|reads) made/ { n = $2 } /^(Write|Read) size/ { sz = $2 } END { print n * sz }' <<<"$out")
}

# with_ticks CMD...: runs CMD (measure or measure_out, so SECS is set too)
# in this shell and sets TICKS, the machine's busy CPU while it ran.
with_ticks() {
	local t0
	t0=$(cpu_busy)
	"$@"
	TICKS=$(($(cpu_busy) - t0))
}

# mount_casfs: casfs mount in the background until the mount answers.
mount_casfs() {
	"$CASFS" mount "rados://$pool/bench" "$mnt" >>"$logf" 2>&1 &
	MOUNT_PID=$!
	for _ in $(seq 300); do
		mountpoint -q "$mnt" && stat -f "$mnt" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "casfs mount did not come up (see $logf)"
}
umount_casfs() {
	kill -TERM "$MOUNT_PID"
	wait "$MOUNT_PID" || die "casfs mount exited with an error (see $logf)"
}

rows=()
cpurows=()
for run in $(seq "$RUNS"); do
	log "run $run: rados bench write ($SECS_BENCH s, at most 1 GiB)"
	bench_rados write "$max_objects"
	wbw=$RB_BW
	wcpu=$(cpu_per_gib "$RB_TICKS" "$RB_BYTES")
	log "run $run: rados bench seq"
	bench_rados seq
	rbw=$RB_BW
	rcpu=$(cpu_per_gib "$RB_TICKS" "$RB_BYTES")
	rados -p "$pool" cleanup >>"$logf" 2>&1

	# shellcheck disable=SC2086 # INIT_ARGS is a list of flags
	"$CASFS" init $INIT_ARGS "rados://$pool/bench" >>"$logf" 2>&1
	mount_casfs
	log "run $run: casfs write of $MB MiB"
	with_ticks measure "$logf" dd if="$src" of="$mnt/f" bs=1M
	cw=$(mbps "$bytes" "$SECS")
	cwcpu=$(cpu_per_gib "$TICKS" "$bytes")
	log "run $run: casfs copy of the same file (every chunk stored already)"
	with_ticks measure "$logf" dd if="$src" of="$mnt/g" bs=1M
	cw2=$(mbps "$bytes" "$SECS")
	cw2cpu=$(cpu_per_gib "$TICKS" "$bytes")
	umount_casfs
	drop_caches
	mount_casfs
	log "run $run: casfs read, cold chunk cache"
	with_ticks measure_out /dev/null "$logf" dd if="$mnt/f" bs=1M
	cr=$(mbps "$bytes" "$SECS")
	crcpu=$(cpu_per_gib "$TICKS" "$bytes")
	cmp "$src" "$mnt/f" || die "casfs read back different data"
	umount_casfs
	"$CASFS" fsck "rados://$pool/bench" >>"$logf" 2>&1 || die "fsck found damage (see $logf)"
	# Next run starts from an empty pool: remove the store's objects.
	for ns in bench bench.chunks; do
		rados -p "$pool" -N "$ns" ls 2>/dev/null | xargs -r -n 64 rados -p "$pool" -N "$ns" rm
	done
	rows+=("| $run | $wbw | $cw | $(ratio "$cw" "$wbw") | $rbw | $cr | $(ratio "$cr" "$rbw") | $cw2 | $(ratio "$cw2" "$cw") |")
	cpurows+=("| $run | $wcpu | $cwcpu | $(cpu_ceiling "$cwcpu") | $(awk -v b="$wbw" 'BEGIN { printf "%.0f", 0.7 * b }') | $rcpu | $crcpu | $(cpu_ceiling "$crcpu") | $(awk -v b="$rbw" 'BEGIN { printf "%.0f", 0.7 * b }') | $cw2cpu |")
done

{
	echo
	echo "### bench-rados.sh: casfs $rev${INIT_ARGS:+ (init $INIT_ARGS)}, $(date -u +%Y-%m-%dT%H:%MZ), $MB MiB file, rados bench ${SECS_BENCH}s -t 16 -b $OBJ"
	echo
	echo "| run | rados bench write MB/s | casfs write MB/s | ÷ | rados bench seq MB/s | casfs read MB/s (cold cache) | ÷ | casfs 2nd copy MB/s | 2nd ÷ 1st |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Busy CPU of the whole machine (OSD, mon, casfs, dd or rados, kernel) per GiB moved, and the ceiling it sets: $(nproc) cores ÷ that cost."
	echo
	echo "| run | rados bench write CPU s/GiB | casfs write CPU s/GiB | casfs write ceiling MB/s | 0.7 × rados bench write MB/s | rados bench seq CPU s/GiB | casfs read CPU s/GiB | casfs read ceiling MB/s | 0.7 × rados bench seq MB/s | casfs 2nd copy CPU s/GiB |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${cpurows[@]}"
} | tee -a "$RESULTS"
