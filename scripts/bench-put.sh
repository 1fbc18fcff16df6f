#!/usr/bin/env bash
# casfs put and get of one large file, without a mount, in interleaved
# rounds against the disk's own ceiling:
#
#   scripts/bench-put.sh            # from the repository root, as root
#
# Each round, back to back: `dd bs=1M conv=fsync` of the file (what the disk
# takes for the same bytes, written and made durable), `casfs put` of it into
# a new store of each local layout (packs, the default, and files), a second
# put of it into the packs store (every chunk already there), and `casfs
# get` of it from that store to /dev/null (the store in the page cache, as
# it is right after the put). The file is incompressible (AES-CTR keystream)
# and read once first, so its own reads come from the page cache. Every get
# is compared with the file (cmp) and every store fsck'd once at the end.
#
# Environment: BENCH_DIR (parent of the scratch directory, default /var/tmp),
# BENCH_PUT_MB (1024), BENCH_ROUNDS (5), BENCH_LAYOUTS ("packs files"),
# BENCH_RESULTS (default bench-out/put.md).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
BENCH_DEPS=none bench_setup

MB=${BENCH_PUT_MB:-1024}
ROUNDS=${BENCH_ROUNDS:-5}
read -r -a LAYOUTS <<<"${BENCH_LAYOUTS:-packs files}"
RESULTS=${BENCH_RESULTS:-$REPO_ROOT/bench-out/put.md}
mkdir -p "$REPO_ROOT/bench-out" "${BENCH_DIR:-/var/tmp}"
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/casfs-bench-put.XXXXXX")
LOG=$work/bench.log
trap 'rm -rf "$work"; bench_cleanup_build' EXIT

bytes=$((MB << 20))
f=$work/data
log "generating $MB MiB of random data"
randfile "$f" "$bytes" put
cat "$f" >/dev/null

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
header="| round | dd conv=fsync MB/s |"
sep="|---:|---:|"
for l in "${LAYOUTS[@]}"; do
	header+=" put ($l) MB/s | ÷ dd |"
	sep+="---:|---:|"
done
header+=" put again MB/s | get MB/s | peak RSS put / get MiB |"
sep+="---:|---:|---:|"
rows=()
for round in $(seq 1 "$ROUNDS"); do
	rm -f "$work/dd"
	sync
	sleep 1
	measure "$LOG" dd if="$f" of="$work/dd" bs=1M conv=fsync
	dd_secs=$SECS
	rm -f "$work/dd"
	row="| $round | $(mbps "$bytes" "$dd_secs") |"
	line="round $round: dd $(mbps "$bytes" "$dd_secs")"
	for l in "${LAYOUTS[@]}"; do
		st=$work/store-$l
		rm -rf "$st"
		"$CASFS" init --layout "$l" "$st" >>"$LOG"
		sync
		sleep 1
		measure "$LOG" "$CASFS" put "$st" big "$f"
		put_rss=$RSS_KB
		row+=" $(mbps "$bytes" "$SECS") | $(ratio "$dd_secs" "$SECS") |"
		line+=", put ($l) $(mbps "$bytes" "$SECS")"
	done
	st=$work/store-${LAYOUTS[0]}
	measure "$LOG" "$CASFS" put "$st" again "$f"
	row+=" $(mbps "$bytes" "$SECS") |"
	line+=", again $(mbps "$bytes" "$SECS")"
	measure_out "$work/got" "$LOG" "$CASFS" get "$st" big
	get_secs=$SECS get_rss=$RSS_KB
	cmp -s "$f" "$work/got" || die "casfs get returned other bytes than were put"
	rm -f "$work/got"
	# Timed to /dev/null too: writing a new 1 GiB file measures the page
	# cache's allocation here, not casfs (see docs/BENCHMARKS.md).
	measure_out /dev/null "$LOG" "$CASFS" get "$st" big
	get_secs=$SECS
	row+=" $(mbps "$bytes" "$get_secs") | $((put_rss / 1024)) / $((get_rss / 1024)) |"
	line+=", get $(mbps "$bytes" "$get_secs")"
	log "$line"
	rows+=("$row")
done
for l in "${LAYOUTS[@]}"; do
	"$CASFS" fsck "$work/store-$l" >>"$LOG" 2>&1 || die "fsck of the $l store failed (see $LOG)"
done

{
	echo "## bench-put $(date -u +%Y-%m-%dT%H:%M:%SZ): $MB MiB of random data, $ROUNDS rounds"
	echo
	echo "- casfs built from $CASFS_REV"
	echo "- disk: $(findmnt -no SOURCE,FSTYPE,OPTIONS --target "$work" | cut -c1-80)"
	echo "- load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- put: \`casfs init --layout L S; sync; sleep 1; casfs put S big FILE\`; ÷ dd is dd's time over put's"
	echo
	echo "$header"
	echo "$sep"
	printf '%s\n' "${rows[@]}"
	echo
} | tee -a "$RESULTS"
