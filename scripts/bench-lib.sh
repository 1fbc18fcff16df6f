# shellcheck shell=bash disable=SC2034 # sets globals (SECS, RSS_KB, CASFS...) for its callers
# Helpers shared by scripts/bench-versions.sh and scripts/bench-fuse.sh.
# Source it from a script that has already done `set -euo pipefail`.
#
# Conventions: every measurement goes through `measure`, which records wall
# time (nanosecond clock) and peak RSS (GNU time's %M) of one command; sizes
# are bytes; rates are printed in MB/s (10^6 bytes per second) so that they
# compare directly with what restic, borg, fio and dd print.

# bench_setup cds to the repository root, puts Go on PATH, installs the
# benchmark dependencies when missing and builds bin/casfs: from the working
# tree, or with BENCH_REV=COMMIT from a clean export of that commit (the
# working tree may hold someone's unfinished edits). BUILD_TREE is the tree
# built from (go.mod included: build helpers there too; the caller's cleanup
# calls bench_cleanup_build). CASFS_REV names what was built, "-dirty" when
# the working tree had uncommitted changes. BENCH_DEPS=none installs only
# what casfs itself needs (fuse3), not the peers (restic, borg).
bench_setup() {
	cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
	REPO_ROOT=$PWD
	export PATH=$PATH:/usr/local/go/bin
	if [[ ${BENCH_DEPS:-} == none ]]; then
		scripts/install-deps.sh
	else
		scripts/install-deps.sh --bench
	fi
	[[ -x /usr/bin/time ]] || apt_install time
	mkdir -p bin
	BUILD_TREE=$REPO_ROOT
	if [[ -n ${BENCH_REV:-} ]]; then
		BUILD_TREE=$(mktemp -d /tmp/casfs-bench-build.XXXXXX)
		git archive "$BENCH_REV" | tar -x -C "$BUILD_TREE"
		CASFS_REV=$(git rev-parse --short "$BENCH_REV")
	else
		CASFS_REV=$(git describe --always --dirty 2>/dev/null || echo unknown)
	fi
	(cd "$BUILD_TREE" && go build -o "$REPO_ROOT/bin/casfs" ./cmd/casfs)
	CASFS=$REPO_ROOT/bin/casfs
	log "casfs built from $CASFS_REV"
}

# bench_cleanup_build removes the clean export bench_setup made, if any.
bench_cleanup_build() {
	if [[ -n ${BUILD_TREE:-} && $BUILD_TREE != "${REPO_ROOT:-}" ]]; then
		rm -rf "$BUILD_TREE"
	fi
}

# apt_install PKG... installs Debian packages that are not installed yet.
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing: ${missing[*]}"
	local sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
	log "FATAL: $*"
	exit 1
}

# measure LOGFILE CMD... runs CMD with stdout and stderr appended to LOGFILE
# (so `measure log cmd >/dev/null` does not work: redirect inside a `sh -c`
# or a function when CMD's stdout must go elsewhere). Sets SECS (wall clock,
# 3 decimals) and RSS_KB (peak resident set of CMD, KiB). A failing CMD
# stops the script with its log tail.
measure() {
	local logf=$1
	shift
	local tf t0 t1 rc=0
	tf=$(mktemp)
	echo "+ $*" >>"$logf"
	t0=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$tf" "$@" >>"$logf" 2>&1 || rc=$?
	t1=$(date +%s%N)
	if ((rc != 0)); then
		tail -n 20 "$logf" >&2
		rm -f "$tf"
		die "command failed (exit $rc): $*"
	fi
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	RSS_KB=$(tail -n 1 "$tf")
	rm -f "$tf"
}

# measure_out OUTFILE LOGFILE CMD... is measure with CMD's stdout sent to
# OUTFILE (for example /dev/null) instead of the log.
measure_out() {
	local out=$1 logf=$2
	shift 2
	local tf t0 t1 rc=0
	tf=$(mktemp)
	echo "+ $* > $out" >>"$logf"
	t0=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$tf" "$@" >"$out" 2>>"$logf" || rc=$?
	t1=$(date +%s%N)
	if ((rc != 0)); then
		tail -n 20 "$logf" >&2
		rm -f "$tf"
		die "command failed (exit $rc): $*"
	fi
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	RSS_KB=$(tail -n 1 "$tf")
	rm -f "$tf"
}

# mbps BYTES SECS prints the rate in MB/s with one decimal.
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) print "inf"; else printf "%.1f", b / s / 1e6 }'; }
# mib BYTES prints BYTES in MiB with one decimal.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# ratio A B prints A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
# fsize FILE prints its size in bytes.
fsize() { stat -c %s "$1"; }

# cpu_busy prints the machine's busy CPU time so far, in clock ticks
# (user, nice, system, irq, softirq; not idle, iowait or the time the
# hypervisor stole). Two readings around a step give what the step cost
# every process and the kernel together, daemons included.
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }

# cpu_per_gib TICKS BYTES prints CPU seconds per GiB.
cpu_per_gib() { awk -v t="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz / (b / 1073741824) }'; }

# cpu_ceiling CPU_PER_GIB prints the MB/s at which this machine's cores
# would all be busy at that cost: what no scheduling can beat.
cpu_ceiling() { awk -v c="$1" -v n="$(nproc)" 'BEGIN { printf "%.0f", n / c * 1073.741824 }'; }

# randfile PATH BYTES SEED writes BYTES of incompressible, reproducible
# pseudo-random data (AES-128-CTR keystream of SEED). ~4× faster than
# /dev/urandom on the 2-core reference machine, and the same every run.
randfile() {
	local path=$1 bytes=$2 seed=$3
	{ openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$seed" -in /dev/zero 2>/dev/null || true; } |
		head -c "$bytes" >"$path"
	[[ $(fsize "$path") == "$bytes" ]] || die "randfile $path: short write"
}

# drop_caches writes back dirty pages and empties the kernel's page, dentry
# and inode caches, so the next read comes from disk. Needs root; without it
# the reads are warm and a warning says so.
drop_caches() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		log "warning: cannot drop caches (not root?): 'cold' figures are warm"
	fi
}

# machine_desc prints a markdown list describing the machine and its load.
machine_desc() {
	local cpu mem disk fs_of
	cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	fs_of=$(df -P "${1:-/var/tmp}" | awk 'NR == 2 { print $1 }')
	disk=$(findmnt -n -o FSTYPE,OPTIONS --target "${1:-/var/tmp}" 2>/dev/null | cut -c1-60)
	echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); casfs built from $CASFS_REV"
	echo "- CPU: $(nproc) × $cpu; RAM $mem; kernel $(uname -r)"
	echo "- disk: $fs_of ($disk)"
	echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
}
