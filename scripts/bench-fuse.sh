#!/usr/bin/env bash
# FUSE benchmark: the same workloads on a plain directory, on go-fuse's
# loopback example (the reference: a FUSE server that only copies), and on a
# casfs mount; then `cat` of one large file through casfs's, restic's and
# borg's mounts of the same data.
#
#   scripts/bench-fuse.sh                # from the repository root, as root
#
# Configurations (each on the same ext4 disk, in a fresh directory or store):
#   plain            the directory itself, no FUSE
#   loopback         go-fuse v2 example/loopback with passthrough DISABLED.
#                    The example has no flag for it (v2.12.1: -debug,
#                    -allow-other, -idmapped, -q, -ro, -directmount, ...) and
#                    passthrough is on by default for its handles on kernels
#                    >= 6.9, which makes data I/O bypass the server. So the
#                    script builds a copy of the example's main.go with one
#                    line added, DisabledCapabilities: fuse.CAP_PASSTHROUGH.
#                    This is the reference the targets are stated against.
#   loopback+pt      the unmodified example (passthrough on), for information.
#   casfs            casfs mount over a fresh local store, default options.
#
# Workloads, per configuration:
#   seq write        dd of 2 GiB of random data (in page cache) with bs=1M,
#                    timed until dd exits, i.e. until close(2) returned (for
#                    casfs: committed); then again with conv=fsync into a
#                    second file (different data, so casfs cannot dedup).
#   seq read         dd of that 2 GiB file to /dev/null with bs=1M: cold
#                    (drop_caches, and the server restarted) and warm (again).
#                    One cold read per configuration says little on a VM:
#                    the loopback alone read at 880-2090 MB/s within
#                    minutes, partly depending on what ran just before it.
#                    So the cold-read target is judged by
#                    scripts/bench-coldread.sh instead: BENCH_COLD_PAIRS
#                    pairs of reads through the loopback and casfs, each
#                    side measured right after a read of its own, back to
#                    back; the ratio of the two sides' mean rates is the
#                    figure (see that script).
#   rand 4K read     fio, psync, 1 job, queue depth 1, 4 KiB random reads of
#                    a 1 GiB file, 65536 reads (each block at most once) or
#                    30 s. The file is read once sequentially first, and fio
#                    invalidates the file's page cache at start: every read
#                    is one round trip to the server, whose own data (backing
#                    file, chunk cache) is warm. For "plain" that means the
#                    reads come from the disk.
#   create 20k       a Python loop creating 20 dirs × 1000 files of 1 KiB.
#   ls -lR           over that tree: cold (drop_caches, server restarted)
#                    and warm (again right after).
#   rm -rf           of that tree.
#   untar            tar -x of the Go source tree (a tar made once from
#                    $(go env GOROOT)/src), until tar exits.
# Data read back through casfs is compared with what was written (untimed).
#
# Then: a 1 GiB random file is stored with `casfs put`, `restic backup` and
# `borg create`, and read with cat through `casfs mount`, `restic mount` and
# `borg mount` (pyfuse3): cold (fresh mount, drop_caches) and warm.
#
# Environment: BENCH_DIR (parent of the scratch directory, default /var/tmp),
# BENCH_KEEP=1 keeps it, BENCH_RESULTS (default bench-out/results.md),
# BENCH_CONFIGS (default "plain loopback loopback+pt casfs"), BENCH_SEQ_MB
# (2048), BENCH_RAND_MB (1024), BENCH_FILES (20000), BENCH_FIO_SECS (30),
# BENCH_COLD_PAIRS (4, even so that each side goes first as often; 0 skips
# the pairs), BENCH_PEERS=0 skips the restic/borg part, CASFS_MOUNT_FLAGS
# (extra flags for casfs mount). Needs root (drop_caches, mounting).
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
bench_setup
apt_install fio python3-pyfuse3

CONFIGS=${BENCH_CONFIGS:-plain loopback loopback+pt casfs}
SEQ_MB=${BENCH_SEQ_MB:-2048}
RAND_MB=${BENCH_RAND_MB:-1024}
NFILES=${BENCH_FILES:-20000}
FIO_SECS=${BENCH_FIO_SECS:-30}
PEERS=${BENCH_PEERS:-1}
COLD_PAIRS=${BENCH_COLD_PAIRS:-4}
RESULTS=${BENCH_RESULTS:-$REPO_ROOT/bench-out/results.md}
read -r -a CASFS_FLAGS <<<"${CASFS_MOUNT_FLAGS:-}"
mkdir -p "$(dirname "$RESULTS")" "$REPO_ROOT/bench-out" "${BENCH_DIR:-/var/tmp}"
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/casfs-bench-fuse.XXXXXX")
LOG=$work/bench.log

# ---------------------------------------------------------------- mounts
# MNT_PID[mountpoint] is the server's pid; MNT_CMD[mountpoint] its command
# line (NUL-free, one word per line) so that it can be restarted.
declare -A MNT_PID MNT_CMD

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }

# mount_start MNT CMD... runs the FUSE server CMD in the background and waits
# (up to 20 s) until MNT is a mount that answers stat.
mount_start() {
	local mnt=$1
	shift
	mkdir -p "$mnt"
	"$@" >>"$LOG" 2>&1 </dev/null &
	MNT_PID[$mnt]=$!
	MNT_CMD[$mnt]=$(printf '%s\n' "$@")
	local i
	for ((i = 0; i < 200; i++)); do
		if is_mounted "$mnt" && stat "$mnt" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "${MNT_PID[$mnt]}" 2>/dev/null || {
			tail -n 20 "$LOG" >&2
			die "mount server for $mnt exited: $*"
		}
		sleep 0.1
	done
	die "$mnt not mounted after 20 s: $*"
}

# mount_stop MNT unmounts MNT and waits for its server to exit: a normal
# unmount first, then SIGTERM, then a lazy unmount and SIGKILL.
mount_stop() {
	local mnt=$1 pid=${MNT_PID[$1]:-} i
	if is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>>"$LOG" || umount "$mnt" 2>>"$LOG" || true
	fi
	if [[ -n $pid ]]; then
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			((i == 100)) && kill -TERM "$pid" 2>/dev/null
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "warning: server $pid of $mnt still running after 30 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || log "note: server of $mnt exited with status $?"
	fi
	if is_mounted "$mnt"; then
		umount -l "$mnt" 2>>"$LOG" || fusermount3 -uz "$mnt" 2>>"$LOG" || true
	fi
	unset "MNT_PID[$mnt]"
}

# remount MNT restarts MNT's server with the same command: its caches start
# empty. A no-op for a directory that is not one of ours.
remount() {
	local mnt=$1
	[[ -n ${MNT_CMD[$mnt]:-} ]] || return 0
	local -a cmd
	mapfile -t cmd <<<"${MNT_CMD[$mnt]}"
	mount_stop "$mnt"
	mount_start "$mnt" "${cmd[@]}"
}

cleanup() {
	local rc=$? mnt
	for mnt in "${!MNT_PID[@]}"; do
		mount_stop "$mnt" || true
	done
	# Anything still mounted under the scratch directory (a server that
	# died): detach it before deleting.
	awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | while read -r mnt; do
		umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	done
	# The log outlives the scratch directory: bench-out/ is git-ignored.
	cp "$LOG" "$REPO_ROOT/bench-out/bench-fuse.log" 2>/dev/null || true
	((rc == 0)) || log "failed (exit $rc); log: bench-out/bench-fuse.log"
	bench_cleanup_build
	if [[ -n ${BENCH_KEEP:-} ]]; then
		log "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
MACHINE=$(machine_desc "$work")
log "scratch directory $work, log $LOG"

# ---------------------------------------------------------------- binaries
# The loopback example, as shipped and with passthrough disabled, both built
# in the tree casfs was built from, so that they use its go.mod's go-fuse.
gofuse=$(cd "$BUILD_TREE" && go list -m -f '{{.Dir}}' github.com/hanwen/go-fuse/v2)
gofuse_ver=$(cd "$BUILD_TREE" && go list -m -f '{{.Version}}' github.com/hanwen/go-fuse/v2)
(cd "$BUILD_TREE" && go build -o "$REPO_ROOT/bin/loopback" github.com/hanwen/go-fuse/v2/example/loopback)
nopt=$BUILD_TREE/bin/_loopback-nopt.src # git-ignored; "_" keeps it out of ./... (go vet, go test)
mkdir -p "$nopt"
sed 's|^\(\t*\)Name: *"loopback",.*|&\n\1DisabledCapabilities: fuse.CAP_PASSTHROUGH,|' \
	"$gofuse/example/loopback/main.go" >"$nopt/main.go"
grep -q 'DisabledCapabilities: fuse.CAP_PASSTHROUGH' "$nopt/main.go" ||
	die "could not patch $gofuse/example/loopback/main.go to disable passthrough"
(cd "$BUILD_TREE" && go build -o "$REPO_ROOT/bin/loopback-nopt" ./bin/_loopback-nopt.src)
LOOPBACK_NOPT=$REPO_ROOT/bin/loopback-nopt LOOPBACK=$REPO_ROOT/bin/loopback

# ---------------------------------------------------------------- inputs
log "generating inputs"
in=$work/in
mkdir -p "$in"
randfile "$in/seqA" $((SEQ_MB << 20)) casfs-bench-seqA
randfile "$in/seqB" $((SEQ_MB << 20)) casfs-bench-seqB
randfile "$in/rand" $((RAND_MB << 20)) casfs-bench-rand
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$(go env GOROOT)" -cf "$in/gosrc.tar" src
gosrc_bytes=$(fsize "$in/gosrc.tar")
gosrc_entries=$(tar -tf "$in/gosrc.tar" | wc -l)
seq_bytes=$((SEQ_MB << 20))
cat >"$work/mkfiles.py" <<'EOF'
# mkfiles.py ROOT N: N files of 1 KiB, 1000 per directory, distinct content.
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in range((n + 999) // 1000):
    os.mkdir(f"{root}/d{d:02}")
for i in range(n):
    with open(f"{root}/d{i // 1000:02}/f{i:05}", "wb") as f:
        f.write((b"%06d " % i) * 146 + b"\n")
EOF
py=/usr/bin/python3
[[ -x $py ]] || py=python3

# warm FILE... reads files into the page cache (inputs of write tests).
warm() { cat "$@" >/dev/null; }

# fio_iops FILE prints the IOPS of 4 KiB random reads of FILE.
fio_iops() {
	local out=$work/fio.json
	fio --name=randread --filename="$1" --rw=randread --bs=4k --size=$((RAND_MB << 20)) \
		--ioengine=psync --iodepth=1 --numjobs=1 --invalidate=1 --randrepeat=1 \
		--io_size=$((RAND_MB < 256 ? RAND_MB : 256))m --runtime="$FIO_SECS" --output-format=json --output="$out" >>"$LOG" 2>&1 ||
		die "fio failed on $1"
	"$py" -c 'import json,sys; j=json.load(open(sys.argv[1]))["jobs"][0]["read"]; print("%.0f %d" % (j["iops"], j["total_ios"]))' "$out"
}

# ---------------------------------------------------------------- workloads
declare -A R # R[config.metric]

# run_workloads CONFIG DIR: every workload in DIR (a mount or a directory).
run_workloads() {
	local c=$1 d=$2 iops n
	log "== $c: sequential write ${SEQ_MB} MiB"
	warm "$in/seqA" "$in/seqB"
	measure "$LOG" dd if="$in/seqA" of="$d/seqA" bs=1M status=none conv=fsync
	R[$c.wfsync]=$(mbps "$seq_bytes" "$SECS")
	warm "$in/seqB"
	measure "$LOG" dd if="$in/seqB" of="$d/seq" bs=1M status=none
	R[$c.write]=$(mbps "$seq_bytes" "$SECS")
	rm -f "$d/seqA"

	log "== $c: sequential read, cold and warm"
	remount "$d"
	drop_caches
	measure "$LOG" dd if="$d/seq" of=/dev/null bs=1M status=none
	R[$c.rcold]=$(mbps "$seq_bytes" "$SECS")
	measure "$LOG" dd if="$d/seq" of=/dev/null bs=1M status=none
	R[$c.rwarm]=$(mbps "$seq_bytes" "$SECS")
	if [[ $c == casfs* ]] && ! cmp -s "$d/seq" "$in/seqB"; then
		R[$c.bad]+=" seq-file-differs"
		log "ERROR: $c: $d/seq differs from what was written"
	fi
	rm -f "$d/seq"

	log "== $c: 4 KiB random reads"
	dd if="$in/rand" of="$d/rand" bs=1M status=none
	warm "$d/rand"
	read -r iops n < <(fio_iops "$d/rand")
	R[$c.rand]=$iops
	R[$c.randn]=$n
	rm -f "$d/rand"

	log "== $c: create $NFILES files"
	mkdir "$d/tree"
	measure "$LOG" "$py" "$work/mkfiles.py" "$d/tree" "$NFILES"
	R[$c.create]=$SECS
	log "== $c: ls -lR"
	remount "$d"
	drop_caches
	measure_out /dev/null "$LOG" ls -lR "$d/tree"
	R[$c.lscold]=$SECS
	measure_out /dev/null "$LOG" ls -lR "$d/tree"
	R[$c.lswarm]=$SECS
	n=$(find "$d/tree" -type f | wc -l)
	if ((n != NFILES)); then
		R[$c.bad]+=" $n-of-$NFILES-files"
		log "ERROR: $c: $n files listed, want $NFILES"
	fi
	log "== $c: rm -rf of them"
	measure "$LOG" rm -rf "$d/tree"
	R[$c.rm]=$SECS

	log "== $c: untar Go source ($gosrc_entries entries)"
	mkdir "$d/untar"
	warm "$in/gosrc.tar"
	measure "$LOG" tar -xf "$in/gosrc.tar" -C "$d/untar"
	R[$c.untar]=$SECS
	if [[ $c == casfs* ]] && ! tar --compare -f "$in/gosrc.tar" -C "$d/untar" >>"$LOG" 2>&1; then
		R[$c.bad]+=" untar-differs"
		log "ERROR: $c: extracted tree differs from the tar (tar --compare, see log)"
	fi
	log "== $c: cleaning up"
	rm -rf "$d/untar"
}

for c in $CONFIGS; do
	case $c in
	plain)
		mkdir -p "$work/plain"
		run_workloads plain "$work/plain"
		rm -rf "$work/plain"
		;;
	loopback | loopback+pt)
		bin=$LOOPBACK_NOPT
		[[ $c == loopback ]] || bin=$LOOPBACK
		mkdir -p "$work/$c.orig"
		mount_start "$work/$c.mnt" "$bin" -q -directmount "$work/$c.mnt" "$work/$c.orig"
		run_workloads "$c" "$work/$c.mnt"
		mount_stop "$work/$c.mnt"
		rm -rf "$work/$c.orig"
		;;
	casfs)
		"$CASFS" init "$work/casfs.store" >>"$LOG"
		mount_start "$work/casfs.mnt" "$CASFS" mount "${CASFS_FLAGS[@]}" "$work/casfs.store" "$work/casfs.mnt"
		run_workloads casfs "$work/casfs.mnt"
		mount_stop "$work/casfs.mnt"
		"$CASFS" stats "$work/casfs.store" >>"$LOG" 2>&1 || true
		if ! "$CASFS" fsck "$work/casfs.store" >>"$LOG" 2>&1; then
			R[casfs.bad]+=" fsck-failed"
			log "ERROR: casfs fsck failed after the workloads"
		fi
		rm -rf "$work/casfs.store"
		;;
	*) die "unknown configuration $c" ;;
	esac
done
rm -f "$in/seqA" "$in/seqB"

# ------------------------------------------------------ cold read, in pairs
if ((COLD_PAIRS > 0)); then
	log "== cold sequential read: $COLD_PAIRS pairs (scripts/bench-coldread.sh)"
	BENCH_PAIRS=$COLD_PAIRS BENCH_SEQ_MB=$SEQ_MB BENCH_DATA=random BENCH_SUMMARY=$work/coldread.sum \
		BENCH_RESULTS=$work/coldread.md scripts/bench-coldread.sh >>"$LOG" 2>&1 ||
		die "scripts/bench-coldread.sh failed (see $LOG)"
	read -r lbmean csmean _ <"$work/coldread.sum"
	R[loopback.rcoldpairs]=$lbmean R[casfs.rcoldpairs]=$csmean
	coldread_table=$(sed -n '/^| pair /,/^Summary/p' "$work/coldread.md")
fi

# ---------------------------------------------------------------- peers
peer_rows=()
if [[ $PEERS != 0 ]]; then
	log "== cat through casfs, restic and borg mounts"
	apt_install restic borgbackup
	# restic's FUSE library runs `fusermount`; Debian 12's fuse3 only ships
	# fusermount3 (same protocol), so give it one if missing.
	if ! command -v fusermount >/dev/null; then
		mkdir -p "$work/shim"
		ln -s "$(command -v fusermount3)" "$work/shim/fusermount"
		export PATH=$work/shim:$PATH
	fi
	export RESTIC_PASSWORD=casfs-bench RESTIC_REPOSITORY=$work/restic RESTIC_CACHE_DIR=$work/restic-cache
	export BORG_BASE_DIR=$work/borg-home BORG_REPO=$work/borg BORG_FUSE_IMPL=pyfuse3
	export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
	big=$in/rand
	big_bytes=$(fsize "$big")
	{
		"$CASFS" init "$work/peer-casfs"
		"$CASFS" put "$work/peer-casfs" big.bin "$big"
		restic init
		restic backup "$big"
		borg init -e none
		(cd "$in" && borg create ::a "$(basename "$big")")
	} >>"$LOG" 2>&1

	# peer_cat NAME MNT FILE-IN-MOUNT SERVER-CMD...
	peer_cat() {
		local name=$1 mnt=$2 file=$3 cold warm ok=identical
		shift 3
		drop_caches
		mount_start "$mnt" "$@"
		measure_out /dev/null "$LOG" cat "$file"
		cold=$SECS
		measure_out /dev/null "$LOG" cat "$file"
		warm=$SECS
		cmp -s "$file" "$big" || {
			ok="**DIFFERS**"
			log "ERROR: $name: $file differs"
		}
		mount_stop "$mnt"
		peer_rows+=("| $name | $(mbps "$big_bytes" "$cold") | $(mbps "$big_bytes" "$warm") | $ok |")
	}
	peer_cat "casfs mount" "$work/peer-casfs.mnt" "$work/peer-casfs.mnt/big.bin" \
		"$CASFS" mount "${CASFS_FLAGS[@]}" "$work/peer-casfs" "$work/peer-casfs.mnt"
	peer_cat "restic mount" "$work/restic.mnt" "$work/restic.mnt/snapshots/latest$big" \
		restic mount "$work/restic.mnt"
	peer_cat "borg mount ($BORG_FUSE_IMPL)" "$work/borg.mnt" "$work/borg.mnt/$(basename "$big")" \
		borg mount -f ::a "$work/borg.mnt"
fi

# ---------------------------------------------------------------- report
# cell CONFIG METRIC prints a value or "-" for a configuration not run.
cell() { echo "${R[$1.$2]:--}"; }
# row NAME METRIC UNIT KIND TARGET: KIND "rate" (higher is better: ratio =
# casfs / loopback) or "time" (lower is better: ratio = casfs time /
# loopback time). TARGET is the ratio to meet, "" for none.
row() {
	local name=$1 m=$2 unit=$3 kind=$4 target=$5 c cells="" r verdict
	for c in plain loopback loopback+pt casfs; do
		cells+=" $(cell "$c" "$m") |"
	done
	r=$(ratio "$(cell casfs "$m")" "$(cell loopback "$m")")
	[[ $(cell casfs "$m") == - || $(cell loopback "$m") == - ]] && r=-
	verdict=""
	if [[ -n $target && $r != - ]]; then
		if [[ $kind == rate ]]; then
			verdict=$(awk -v r="$r" -v t="$target" 'BEGIN { printf (r >= t ? "met (≥ %.2f)" : "**not met** (≥ %.2f)"), t }')
		else
			verdict=$(awk -v r="$r" -v t="$target" 'BEGIN { printf (r <= t ? "met (≤ %.1f×)" : "**not met** (≤ %.1f×)"), t }')
		fi
	fi
	echo "| $name | $unit |$cells $r | $verdict |"
}
report=$(
	echo "## bench-fuse $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo
	echo "$MACHINE"
	echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- go-fuse $gofuse_ver; loopback = example/loopback with passthrough disabled; loopback+pt = as shipped"
	echo
	echo "| workload | unit | plain dir | loopback | loopback+pt | casfs | casfs ÷ loopback | target |"
	echo "|---|---|---:|---:|---:|---:|---:|---|"
	row "seq write ${SEQ_MB} MiB, until close" write MB/s rate 0.5
	row "seq write ${SEQ_MB} MiB + fsync" wfsync MB/s rate ""
	if ((COLD_PAIRS > 0)); then
		row "seq read ${SEQ_MB} MiB, cold, one run (see the pairs)" rcold MB/s rate ""
		row "seq read ${SEQ_MB} MiB, cold, each after itself, mean of $COLD_PAIRS" rcoldpairs MB/s rate 0.7
	else
		row "seq read ${SEQ_MB} MiB, cold" rcold MB/s rate 0.7
	fi
	row "seq read ${SEQ_MB} MiB, warm" rwarm MB/s rate 0.7
	row "4 KiB random reads, ${RAND_MB} MiB file" rand IOPS rate 0.5
	row "create $NFILES files of 1 KiB" create s time ""
	row "ls -lR of them, cold" lscold s time 2
	row "ls -lR of them, warm" lswarm s time 2
	row "rm -rf of them" rm s time ""
	row "untar Go src ($(mib "$gosrc_bytes") MiB, $gosrc_entries entries)" untar s time ""
	echo
	echo "Random reads: the file's page cache is dropped by fio, the server's data is warm; on the plain dir fio drops the file's own cache, so they come mostly from the disk."
	echo "fio reads done (of $(((RAND_MB < 256 ? RAND_MB : 256) * 256)), ${FIO_SECS} s cap): $(for c in $CONFIGS; do printf '%s %s; ' "$c" "$(cell "$c" randn)"; done)"
	if ((COLD_PAIRS > 0)); then
		echo
		echo "Cold read in pairs (scripts/bench-coldread.sh; the row gives each side's mean rate over its $COLD_PAIRS reads right after one of its own):"
		echo
		echo "$coldread_table"
	fi
	for c in $CONFIGS; do
		[[ -z ${R[$c.bad]:-} ]] || echo "**$c data/consistency problems:${R[$c.bad]}**"
	done
	if ((${#peer_rows[@]})); then
		echo
		echo "cat of a $(mib "$big_bytes") MiB random file through each tool's mount:"
		echo
		echo "| mount | cold MB/s | warm MB/s | data |"
		echo "|---|---:|---:|---|"
		printf '%s\n' "${peer_rows[@]}"
	fi
	echo
)
echo "$report"
echo "$report" >>"$RESULTS"
log "appended to $RESULTS"
