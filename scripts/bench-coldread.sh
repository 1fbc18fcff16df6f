#!/usr/bin/env bash
# Cold sequential read, casfs mount vs go-fuse's loopback (passthrough
# disabled), in back-to-back pairs: the one workload of bench-fuse.sh, cut
# out so that it can be repeated cheaply on a shared machine.
#
#   scripts/bench-coldread.sh            # from the repository root, as root
#
# The same file is put in a plain directory served by the loopback (built as
# in bench-fuse.sh: example/loopback with DisabledCapabilities:
# fuse.CAP_PASSTHROUGH) and in a fresh casfs store (`casfs put`, which chunks
# it like a write through the mount). A read: server started fresh, caches
# dropped, `dd bs=1M` to /dev/null; printed: MB/s, and the server's CPU
# seconds (user+sys, from /proc/PID/stat just before unmounting). One
# untimed read through each comes first (and checks casfs's bytes with cmp).
#
# What ran just before weighs on a cold read here. In 6 pairs of single
# reads, alternately first, the loopback read at 1920-2090 MB/s (0.9-1.0 s
# of CPU) when it went first, right after a read of its own, and at 880-930
# (2.9-3.2 s) when it went second, right after one of casfs's; casfs read at
# 1140-1560 either way. A likely cause: on the VMs casfs is benchmarked on,
# freed memory goes back to the host and is costly to touch again, and the
# loopback needs page cache for its backing file as well as for the mount.
# So each side is measured after itself: a pair is two reads through one
# side, then two through the other (the order alternating from pair to
# pair), and the second read of each two is the one that counts, "after
# itself"; the first, "after the other", is printed too. The loopback still
# swings after itself, less often (884-1809 MB/s in one run of 4 pairs).
# The figure is the ratio of the two sides' mean rates after themselves
# (the bytes of those reads over their time).
#
# Environment: BENCH_DIR (parent of the scratch directory, default /var/tmp),
# BENCH_SEQ_MB (2048), BENCH_PAIRS (4), BENCH_DATA (random: AES-CTR
# keystream, stored raw; text: compressible, distinct records built from the
# Go source tree, stored zstd-compressed), BENCH_ONLY (loopback or casfs: run
# only that side), CASFS_MOUNT_FLAGS (extra flags for casfs mount),
# BENCH_RESULTS (default bench-out/coldread.md), BENCH_SUMMARY (a file to
# write one line to: the loopback's and casfs's mean MB/s after themselves,
# their ratio, pairs). CASFS_CPUPROFILE is passed on to casfs mount: each
# casfs read then writes a CPU profile to $CASFS_CPUPROFILE.N.K (N the pair,
# 0 the untimed read; K 1 after the other, 2 after itself).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
BENCH_DEPS=none bench_setup

SEQ_MB=${BENCH_SEQ_MB:-2048}
PAIRS=${BENCH_PAIRS:-4}
DATA=${BENCH_DATA:-random}
ONLY=${BENCH_ONLY:-}
RESULTS=${BENCH_RESULTS:-$REPO_ROOT/bench-out/coldread.md}
PROFILE=${CASFS_CPUPROFILE:-}
unset CASFS_CPUPROFILE
read -r -a CASFS_FLAGS <<<"${CASFS_MOUNT_FLAGS:-}"
mkdir -p "$REPO_ROOT/bench-out" "${BENCH_DIR:-/var/tmp}"
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/casfs-bench-coldread.XXXXXX")
LOG=$work/bench.log
SRV_PID=""

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }

# serve MNT CMD... starts a FUSE server and waits until MNT answers stat.
serve() {
	local mnt=$1 i
	shift
	mkdir -p "$mnt"
	"$@" >>"$LOG" 2>&1 </dev/null &
	SRV_PID=$!
	for ((i = 0; i < 200; i++)); do
		is_mounted "$mnt" && stat "$mnt" >/dev/null 2>&1 && return 0
		kill -0 "$SRV_PID" 2>/dev/null || die "server for $mnt exited: $*"
		sleep 0.1
	done
	die "$mnt not mounted after 20 s"
}

# cpu_secs PID prints the user+system CPU seconds PID has used.
cpu_secs() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# unserve MNT unmounts MNT and waits for its server.
unserve() {
	local mnt=$1 i
	fusermount3 -u "$mnt" 2>>"$LOG" || umount "$mnt" 2>>"$LOG" || umount -l "$mnt" 2>>"$LOG" || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$SRV_PID" 2>/dev/null || break
		((i == 100)) && kill -TERM "$SRV_PID" 2>/dev/null
		sleep 0.1
	done
	wait "$SRV_PID" 2>/dev/null || true
	SRV_PID=""
}

cleanup() {
	local rc=$?
	[[ -z $SRV_PID ]] || kill -TERM "$SRV_PID" 2>/dev/null || true
	awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | while read -r mnt; do
		umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	done
	cp "$LOG" "$REPO_ROOT/bench-out/bench-coldread.log" 2>/dev/null || true
	((rc == 0)) || log "failed (exit $rc); log: bench-out/bench-coldread.log"
	bench_cleanup_build
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
MACHINE=$(machine_desc "$work")

# The loopback without passthrough, exactly as bench-fuse.sh builds it.
gofuse=$(cd "$BUILD_TREE" && go list -m -f '{{.Dir}}' github.com/hanwen/go-fuse/v2)
nopt=$BUILD_TREE/bin/_loopback-nopt.src
mkdir -p "$nopt"
sed 's|^\(\t*\)Name: *"loopback",.*|&\n\1DisabledCapabilities: fuse.CAP_PASSTHROUGH,|' \
	"$gofuse/example/loopback/main.go" >"$nopt/main.go"
grep -q 'DisabledCapabilities: fuse.CAP_PASSTHROUGH' "$nopt/main.go" || die "could not patch the loopback"
(cd "$BUILD_TREE" && go build -o "$REPO_ROOT/bin/loopback-nopt" ./bin/_loopback-nopt.src)
LOOPBACK=$REPO_ROOT/bin/loopback-nopt

log "generating $SEQ_MB MiB of $DATA data"
mkdir -p "$work/orig"
f=$work/orig/seq
bytes=$((SEQ_MB << 20))
case $DATA in
random) randfile "$f" "$bytes" casfs-bench-seqB ;;
text)
	# Compressible like source code (~3.4x with zstd), but not
	# deduplicable: every 200-byte line of the Go tree's text, repeated
	# as often as needed, gets a distinct prefix.
	tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$(go env GOROOT)" -cf "$work/src.tar" src
	reps=$((bytes / $(fsize "$work/src.tar") + 2))
	for ((i = 0; i < reps; i++)); do cat "$work/src.tar"; done |
		tr -c '[:print:]\n' ' ' | fold -w 200 |
		awk '{ printf "%08x %s\n", NR * 2654435761 % 4294967296, $0 }' |
		head -c "$bytes" >"$f" || true
	rm -f "$work/src.tar"
	[[ $(fsize "$f") == "$bytes" ]] || die "text data: short"
	;;
*) die "BENCH_DATA: random or text" ;;
esac
"$CASFS" init "$work/store" >>"$LOG"
"$CASFS" put "$work/store" seq "$f" >>"$LOG" 2>&1
"$CASFS" stats "$work/store" >>"$LOG" 2>&1 || true

# one NAME PAIR reads the file cold through NAME's mount; prints "MB/s cpu".
one() {
	local name=$1 pair=$2 mnt=$work/$1.mnt cpu
	case $name in
	loopback) serve "$mnt" "$LOOPBACK" -q -directmount "$mnt" "$work/orig" ;;
	casfs)
		if [[ -n $PROFILE ]]; then
			CASFS_CPUPROFILE=$PROFILE.$pair serve "$mnt" "$CASFS" mount "${CASFS_FLAGS[@]}" "$work/store" "$mnt"
		else
			serve "$mnt" "$CASFS" mount "${CASFS_FLAGS[@]}" "$work/store" "$mnt"
		fi
		;;
	esac
	drop_caches
	local c0
	c0=$(cpu_secs "$SRV_PID")
	measure "$LOG" dd if="$mnt/seq" of=/dev/null bs=1M status=none
	cpu=$(awk -v a="$c0" -v b="$(cpu_secs "$SRV_PID")" 'BEGIN { printf "%.2f", b - a }')
	if [[ $name == casfs && $pair == 0 ]] && ! cmp -s "$mnt/seq" "$f"; then
		die "casfs: the file read back differs"
	fi
	unserve "$mnt"
	echo "$(mbps "$bytes" "$SECS") $cpu"
}

# The inputs were just written: flush them and read each side once, untimed,
# so that the first pair does not pay for the disk settling (the first read
# after writing 2 GiB was ~2x slower than the next, whichever side ran it).
sync
one loopback 0 >/dev/null
one casfs 0 >/dev/null

# stats V... prints the mean rate of reads at the rates V (MB/s; the rate of
# all their bytes over all their time), the best and the worst ("-"
# ignored; "- - -" if none).
stats() {
	printf '%s\n' "$@" | grep -v '^-$' |
		awk 'NR == 1 { hi = lo = $1 } { t += 1 / $1; if ($1 > hi) hi = $1; if ($1 < lo) lo = $1 }
			END { if (!NR) print "- - -"; else printf "%.1f %s %s\n", NR / t, hi, lo }'
}

rows=() lbs=() css=() lbos=() csos=()
for ((p = 1; p <= PAIRS; p++)); do
	declare -A got=()
	first=loopback second=casfs
	((p % 2)) || first=casfs second=loopback
	for side in $first $second; do
		[[ -z $ONLY || $ONLY == "$side" ]] || continue
		read -r "got[$side.o]" "got[$side.oc]" < <(one "$side" "$p.1")
		read -r "got[$side.s]" "got[$side.sc]" < <(one "$side" "$p.2")
	done
	lb=${got[loopback.s]:--} cs=${got[casfs.s]:--}
	r=$(ratio "$cs" "$lb")
	[[ $lb == - || $cs == - ]] && r=-
	log "pair $p ($first first): after itself: loopback $lb MB/s (${got[loopback.sc]:--} s CPU), casfs $cs MB/s (${got[casfs.sc]:--} s CPU), ratio $r; after the other: loopback ${got[loopback.o]:--}, casfs ${got[casfs.o]:--}"
	rows+=("| $p | $first | ${got[loopback.o]:--} | $lb | ${got[loopback.sc]:--} | ${got[casfs.o]:--} | $cs | ${got[casfs.sc]:--} | $r |")
	lbs+=("$lb") css+=("$cs") lbos+=("${got[loopback.o]:--}") csos+=("${got[casfs.o]:--}")
	unset got
done

read -r lbmean lbbest lbworst < <(stats "${lbs[@]}")
read -r csmean csbest csworst < <(stats "${css[@]}")
read -r lbomean _ < <(stats "${lbos[@]}")
read -r csomean _ < <(stats "${csos[@]}")
rmean=$(ratio "$csmean" "$lbmean") romean=$(ratio "$csomean" "$lbomean")
[[ $lbmean == - || $csmean == - ]] && rmean=-
[[ $lbomean == - || $csomean == - ]] && romean=-
summary="after itself, loopback $lbmean MB/s (best $lbbest, worst $lbworst), casfs $csmean MB/s (best $csbest, worst $csworst): casfs ÷ loopback $rmean; after the other, loopback $lbomean, casfs $csomean: $romean"
log "$summary"
[[ -z ${BENCH_SUMMARY:-} ]] || echo "$lbmean $csmean $rmean $PAIRS" >"$BENCH_SUMMARY"

report=$(
	echo "## bench-coldread $(date -u +%Y-%m-%dT%H:%M:%SZ): $SEQ_MB MiB, $DATA data"
	echo
	echo "$MACHINE"
	echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- casfs mount flags: ${CASFS_MOUNT_FLAGS:-(defaults)}"
	echo
	echo "| pair | first | loopback after the other, MB/s | loopback after itself, MB/s | its server CPU s | casfs after the other, MB/s | casfs after itself, MB/s | its server CPU s | casfs ÷ loopback, after themselves |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "Summary: $summary."
	echo
)
echo "$report"
echo "$report" >>"$RESULTS"
